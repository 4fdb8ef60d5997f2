"""Awareness guides: the department's Markdown knowledge base (loader, index, library),
the public /guides pages, and the automatic answer a rule may give with a guide."""
