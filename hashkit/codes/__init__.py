"""Binary codes: binarisation, bit packing, code files."""
