"""The MARC encoder: backbone, compression heads, matching net, information constraints."""
