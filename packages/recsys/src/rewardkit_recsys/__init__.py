"""rewardkit-recsys: GREAM generative reasoning recommendation (arXiv 2510.20815).

Semantic item IDs from balanced residual k-means, the supervised alignment and reasoning
curriculum, SRPO's reward (`recsys.id_match`) and advantage (`recsys.bgae`), trie-
constrained and reasoning inference, and Recall/NDCG on MovieLens-100K.
"""
