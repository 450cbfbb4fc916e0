"""A shift's life: its rules (`machine`), pure, and the task that applies them."""
