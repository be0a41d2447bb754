// Placeholder so the module builds while it is being written.
