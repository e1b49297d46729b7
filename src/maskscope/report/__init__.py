"""The report: figures, the papers' numbers beside ours, HTML and Markdown rendering."""
