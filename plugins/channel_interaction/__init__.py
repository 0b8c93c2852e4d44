"""Built-in channel interaction components (one per module); registered through the ``hashkit`` entry point ``channel_interaction``."""

import hashkit
from hashkit.plugin_package import register_package


@hashkit.hookimpl
def hashkit_register(register):
    register_package(__name__, register)
