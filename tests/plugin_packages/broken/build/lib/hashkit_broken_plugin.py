"""A plugin that fails while loading: hashkit must report it by name and load the others."""

raise RuntimeError("this plugin is broken on purpose")
