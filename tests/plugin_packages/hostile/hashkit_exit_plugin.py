"""A plugin that ends the process while it is imported: hashkit must report it and carry on."""

import sys

sys.exit(0)
