"""Evaluation during training and model selection, and the final report of one code length.

``train.selection``: ``"last"`` (the last model), ``"best_val"`` (best headline mAP on a validation split
carved from the training split) or ``"best_query"`` (best on the query set: the official, test-selected
protocol). Rounds are evaluated every ``train.eval_every`` rounds, or after the rounds listed in
``train.eval_rounds`` (and at the last one when selecting); only the first kind of ``eval.database`` (the one
that selects) is scored then. The best model so far is written to ``selected.safetensors`` with the database
codes it was scored with. The final report scores the last model, and the selected one beside it, on the
query set (on a seen/unseen split: under the four open-set protocols, :func:`evaluate_data`).
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
from torch import Tensor

from hashkit.training import ddp
from hashkit.training.checkpoint import load_checkpoint, load_module_state, save_checkpoint, split_prefix, with_prefix
from hashkit.training.evaluate import EvalResult, evaluate_data, evaluate_model, headline

SELECTED = "selected.safetensors"
CODES = "codes.safetensors"


@attrs.define
class Best:
    score: float | None = None
    round: int | None = None


def provided_kind(trainer) -> str:
    """What the protocol's database codes are: ``"learned"`` (ADSH's B), ``"label"`` or ``"encoded"`` (none)."""
    return getattr(trainer.protocol, "database", "encoded")


def protocol_codes(trainer) -> Tensor | None:
    """The protocol's database codes of the training items (CPU), or ``None``."""
    codes = trainer.protocol.database_codes()
    return None if codes is None else codes.detach().float().cpu()


def learned_database(trainer) -> tuple[Tensor, Tensor] | None:
    """The protocol's database codes with the training labels (CPU), or ``None``."""
    codes = protocol_codes(trainer)
    if codes is None:
        return None
    return codes, trainer.train_labels.cpu()


@attrs.define
class ModelSelection:
    """Round evaluations and the best model so far of one code length."""

    best: Best = attrs.field(factory=Best)

    @staticmethod
    def needs_eval(trainer, r: int) -> bool:
        tr = trainer.recipe.train
        last = r + 1 == trainer.num_rounds
        if tr.eval_rounds:
            return last or (r + 1) in tr.eval_rounds
        if tr.selection != "last":
            return tr.eval_every == 0 or (r + 1) % tr.eval_every == 0 or last
        return tr.eval_every > 0 and ((r + 1) % tr.eval_every == 0 or last)

    def evaluate_round(self, trainer, r: int) -> None:
        """Score the model after round ``r`` (rank 0), log it, keep it when it is the best so far."""
        if not self.needs_eval(trainer, r):
            return
        tr = trainer.recipe.train
        if trainer.info.is_main:
            if tr.selection == "best_val":
                split, query, database = "val", trainer.data.val, trainer.train_split
            else:
                data = trainer.data.train
                split, query, database = "query", data.split("query"), data.split("database")
            # only the kind that selects is scored (SEMICON: the learned database; no database encoding per round)
            res = evaluate_model(trainer.model, trainer.recipe, query=query, database=database,
                                 learned=learned_database(trainer), provided_kind=provided_kind(trainer),
                                 device=trainer.device, progress=False, kinds=tuple(trainer.recipe.eval.database[:1]))
            score = headline(res.scores, trainer.recipe)
            trainer.log.write("eval", {"step": trainer.position.step, "round": r, "split": split, "score": score,
                                       **{f"{k}.{m}": v for k, s in res.scores.items() for m, v in s.items()
                                          if isinstance(v, (int, float))}})
            if tr.selection != "last" and (self.best.score is None or score > self.best.score):
                self.best = Best(score=score, round=r + 1)
                tensors = with_prefix(trainer.model.state_dict(), "model.")
                learned = learned_database(trainer)
                if learned is not None:
                    tensors["database_codes"] = learned[0]
                save_checkpoint(trainer.dir / SELECTED, tensors, {"round": r + 1, "score": score, "split": split,
                                                                   "code_length": trainer.code_length})
        ddp.barrier(trainer.info)

    def final_report(self, trainer) -> dict[str, Any]:
        """Evaluate the last model (and the selected one) on the query set (the four open-set protocols for a
        seen/unseen split); write the codes (rank 0)."""
        recipe = trainer.recipe

        def score(model, codes) -> EvalResult:
            return evaluate_data(model, recipe, trainer.data.full, codes=codes, provided_kind=provided_kind(trainer),
                                 train_data=trainer.data.train, device=trainer.device,
                                 progress=recipe.train.progress)

        last = score(trainer.model, protocol_codes(trainer))
        report: dict[str, Any] = {
            "code_length": trainer.code_length, "rounds": trainer.num_rounds, "steps": trainer.position.step,
            "selection": recipe.train.selection, "last": last.scores,
        }
        codes = {f"last.{k}": v for k, v in last.codes.items()}
        selected: EvalResult = last
        if recipe.train.selection != "last" and self.best.round is not None:
            tensors, _ = load_checkpoint(trainer.dir / SELECTED)
            model = copy.deepcopy(trainer.model)
            load_module_state(model, split_prefix(tensors, "model."), what="selected model",
                              path=trainer.dir / SELECTED)
            selected = score(model, tensors.get("database_codes"))
            codes.update({f"selected.{k}": v for k, v in selected.codes.items()})
            report["selected_round"] = self.best.round
            report["selection_score"] = self.best.score
        else:
            report["selected_round"] = trainer.num_rounds
        report["selected"] = selected.scores
        if last.protocols:
            report["protocols"] = {"last": last.protocols, "selected": selected.protocols}
        save_checkpoint(trainer.dir / CODES, codes, {"code_length": trainer.code_length,
                                                      "selection": recipe.train.selection})
        return report
