"""rewardkit-code: VeRPO dense code rewards from per-test execution in sandboxes.

Entry points (see pyproject.toml): rewards code.verpo, code.pass_rate, code.binary;
advantage code.verpo; task code.humaneval. Nothing heavy is imported here.
"""

__version__ = "0.1.0"
