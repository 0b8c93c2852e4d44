"""Built-in backbones components (one per module); registered through the ``hashkit`` entry point ``backbones``."""

import hashkit
from hashkit.plugin_package import register_package


@hashkit.hookimpl
def hashkit_register(register):
    register_package(__name__, register)
