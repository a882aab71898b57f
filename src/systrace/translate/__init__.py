"""Raw system call arguments to the readable values policies are written against."""
