"""Loading the reference implementations' checkpoints into hashkit models, strictly and one to one.

Not a component package (no hook). One module per method, each with its name map, ``load_checkpoint`` and
``to_reference_state``; :mod:`.name_map` holds the shared mechanism. The maps assume the model (and loss)
composed by the method's recipe (``recipes/<method>.toml``):

- :mod:`.fish` — FISH as aassxun/DSH_Analysis @ 44271bc (``models/fish.py``) names it;
- :mod:`.chn` — CHN (DSH_Analysis ``models/chn.py``; kaiba007/FG-CHN's Lightning checkpoints hold the same
  names under ``model.``);
- :mod:`.dpah` — DPAH (DSH_Analysis ``models/dpah.py``); its unused 1000-way ``model.fc`` loads and is dropped;
- :mod:`.dcdh` — DCDH (DSH_Analysis ``models/dcdh.py``); its unused ``model.fc`` and thop counters are dropped.
"""
