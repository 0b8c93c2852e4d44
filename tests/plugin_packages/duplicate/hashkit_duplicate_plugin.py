"""A plugin that registers a name a built-in already has: an error naming both plugins."""

import hashkit


@hashkit.hookimpl
def hashkit_register(register):
    register("backbone", "tiny_cnn", lambda cfg, ctx: None)
