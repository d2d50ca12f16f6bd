"""The SALT trajectory graph as networkx, and a PNG drawing of where credit went.

`trajectory_graph(steps)` builds a `networkx.MultiDiGraph`: one node per state, one edge
per distinct transition (state, action, next state) of the group, with attributes
``action``, ``advantage`` (the mean SALT advantage of its occurrences; with the default
transition key all occurrences share one value), ``traj_advantage`` (the mean plain group
advantage of its occurrences), ``count`` and ``samples``. `draw_graph` colours edges by
advantage (blue negative, red positive, white 0) and writes a PNG.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from rewardkit_agents.trajectories import START


def trajectory_graph(steps: Sequence[Any]) -> nx.MultiDiGraph:
    """Merge step occurrences (`salt.Step`) into states (nodes) and transitions (edges)."""
    graph = nx.MultiDiGraph()
    edges: dict[tuple[Hashable, Hashable, Hashable], list[Any]] = {}
    for step in steps:
        for node in (step.state, step.next_state):
            if node not in graph:
                graph.add_node(node, visits=0, start=node == START)
        graph.nodes[step.state]["visits"] += 1  # how many steps leave this state
        if step.t == 0:
            graph.nodes[step.state]["start"] = True
        edges.setdefault((step.state, step.next_state, step.action), []).append(step)
    for (u, v, action), occurrences in edges.items():
        n = len(occurrences)
        graph.add_edge(
            u,
            v,
            key=action,
            action=action,
            count=n,
            advantage=sum(s.advantage for s in occurrences) / n,
            traj_advantage=sum(s.traj_advantage for s in occurrences) / n,
            samples=sorted({s.sample for s in occurrences}),
        )
    return graph


def _label(node: Hashable, index: int, limit: int = 14) -> str:
    text = str(node)
    return text if len(text) <= limit else f"s{index}"


def draw_graph(
    graph: nx.MultiDiGraph,
    path: str | Path,
    title: str = "SALT trajectory graph",
    attribute: str = "advantage",
    seed: int = 0,
) -> Path:
    """Draw states as nodes and actions as edges coloured by `attribute`; write a PNG."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if graph.number_of_nodes() == 0:
        raise ValueError("draw_graph: the graph is empty (no steps)")
    values = [d[attribute] for _, _, d in graph.edges(data=True)]
    bound = max([abs(v) for v in values] + [1e-9])
    norm = Normalize(vmin=-bound, vmax=bound)
    cmap = matplotlib.colormaps["coolwarm"]

    fig = Figure(figsize=(10, 8), dpi=100)
    ax = fig.add_subplot()
    pos = nx.spring_layout(graph, seed=seed, k=1.5 / max(len(graph), 1) ** 0.5)
    colours = ["#ffd27f" if d.get("start") else "#dddddd" for _, d in graph.nodes(data=True)]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=500)
    nx.draw_networkx_labels(
        graph, pos, ax=ax, labels={n: _label(n, k) for k, n in enumerate(graph)}, font_size=7
    )
    by_rad: dict[float, list[tuple[Hashable, Hashable, dict]]] = {}
    seen: dict[tuple[Hashable, Hashable], int] = {}
    for u, v, data in graph.edges(data=True):
        k = seen.get((u, v), 0)
        seen[(u, v)] = k + 1
        # straight unless there are parallel or opposite edges to tell apart
        single = graph.number_of_edges(u, v) == 1 and not graph.has_edge(v, u)
        rad = 0.0 if k == 0 and single else round(0.15 + 0.2 * k, 2)
        by_rad.setdefault(rad, []).append((u, v, data))
        (x1, y1), (x2, y2) = pos[u], pos[v]
        if u == v:  # self-loop: label above the node
            lx, ly = x1, y1 + 0.08 + 0.05 * k
        else:  # midpoint of the arc3 Bezier curve: middle + rad/2 * (dy, -dx)
            lx = (x1 + x2) / 2 + rad / 2 * (y2 - y1)
            ly = (y1 + y2) / 2 - rad / 2 * (x2 - x1)
        ax.text(
            lx,
            ly,
            f"{data['action']} {data[attribute]:+.2f}",
            fontsize=6,
            ha="center",
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5},
        )
    for rad, edges in by_rad.items():  # one drawing call per curvature
        nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=[(u, v) for u, v, _ in edges],
            ax=ax,
            edge_color=[cmap(norm(d[attribute])) for _, _, d in edges],
            width=[1.0 + min(d["count"], 8) * 0.5 for _, _, d in edges],
            arrows=True,
            arrowsize=12,
            node_size=500,
            connectionstyle=f"arc3,rad={rad}",
        )
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=attribute)
    ax.set_title(title)
    ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
