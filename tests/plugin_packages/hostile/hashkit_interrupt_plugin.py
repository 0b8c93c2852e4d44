"""A plugin that raises KeyboardInterrupt from its hook: hashkit must report it and carry on."""

import hashkit


@hashkit.hookimpl
def hashkit_register(register):
    raise KeyboardInterrupt
