"""rewardkit-translation: ExTrans exemplar-comparison and mExTrans multilingual rewards
(arXiv 2505.12996), sacrebleu metrics, and the `translation.jsonl` task."""
