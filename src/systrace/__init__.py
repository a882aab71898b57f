"""systrace for Linux: system call policies, learning and fault injection on seccomp."""

__version__ = "0.1.0"
