"""Built-in protocols components (one per module); registered through the ``hashkit`` entry point ``protocols``."""

import hashkit
from hashkit.plugin_package import register_package


@hashkit.hookimpl
def hashkit_register(register):
    register_package(__name__, register)
