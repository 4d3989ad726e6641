"""Model code: nn.Modules and their losses. Knows nothing of files."""
