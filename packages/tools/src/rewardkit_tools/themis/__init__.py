"""Themis ("Tool-Augmented Reward Modeling", arXiv 2310.01045): tools, trace format, tool
loop, reward model with LM + ranking loss, generated preference data, reward tools.themis."""
