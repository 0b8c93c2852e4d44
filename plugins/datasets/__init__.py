"""Built-in datasets components (one per module); registered through the ``hashkit`` entry point ``datasets``."""

import hashkit
from hashkit.plugin_package import register_package


@hashkit.hookimpl
def hashkit_register(register):
    register_package(__name__, register)
