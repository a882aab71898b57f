"""The systrace policy language: syntax tree, parser, printer, matching, store and the
compilation of what the kernel can decide."""
