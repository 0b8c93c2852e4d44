"""hashkit's built-in components, installed as the ``hashkit_plugins`` package.

Each sub-package is one plugin of the ``hashkit`` entry-point group (see pyproject.toml) and holds the
components of one kind, one component per module. A component module defines::

    def components(register):
        register("attention", "sem", build_sem, config=SEMConfig)

and the package's ``hashkit_register`` hook calls ``components`` of every module in it, in name order
(:func:`hashkit.plugin_package.register_package`, which third-party packages can use too). Nothing registers at import time.
"""
