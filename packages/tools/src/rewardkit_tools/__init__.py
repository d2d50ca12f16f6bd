"""rewardkit-tools: ToolRL tool-call rewards on BFCL data, and Themis tool-augmented reward
models. Entry points: rewards tools.toolrl, tools.toolrl_format, tools.themis; task
tools.bfcl. Modules import lazily: importing this package loads nothing heavy."""
