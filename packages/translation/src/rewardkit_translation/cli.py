"""`rewardkit-translation`: prepare exemplars and evaluate translations.

rewardkit-translation exemplars DATA.jsonl --url http://127.0.0.1:8000/v1 --model NAME
rewardkit-translation exemplars DATA.jsonl --path /models/strong-model
rewardkit-translation evaluate DATA.jsonl --predictions PRED.jsonl
"""

from __future__ import annotations

import argparse
import sys

from rewardkit_translation.chat import ChatError


def cmd_exemplars(args: argparse.Namespace) -> int:
    from rewardkit_translation.chat import OpenAIChat, TransformersChat
    from rewardkit_translation.exemplars import generate_exemplars

    if (args.url is None) == (args.path is None):
        raise ValueError("give exactly one of --url (an OpenAI-compatible endpoint) or --path")
    if args.url is not None:
        chat = OpenAIChat(
            args.url,
            model=args.model,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            max_concurrency=args.concurrency,
        )
    else:
        chat = TransformersChat(args.path, max_new_tokens=args.max_tokens)
    run = generate_exemplars(
        args.data,
        chat,
        output=args.output,
        template=args.template,
        concurrency=args.concurrency,
        progress=not args.no_progress,
    )
    print(
        f"{run.written} exemplars written, {run.skipped} already present, "
        f"{run.total} rows; in {run.output}"
    )
    if run.empty:
        print(
            f"{len(run.empty)} answers had no translation (rerun to retry): "
            f"{', '.join(run.empty[:5])}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rewardkit_translation.evaluation import evaluate, format_results, read_predictions

    results, unreferenced = evaluate(args.data, read_predictions(args.predictions))
    print(format_results(results, unreferenced))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rewardkit-translation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("exemplars", help="write exemplars for a JSONL of sources (resumable)")
    p.add_argument("data", help="translation JSONL")
    p.add_argument("--url", help="OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", default="default", help="model name sent to the endpoint")
    p.add_argument("--path", help="local transformers chat model")
    p.add_argument("--output", help="default: <data stem>.exemplars.jsonl beside the data")
    p.add_argument("--template", default="plain", help="prompt template name or format string")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--no-progress", dest="no_progress", action="store_true")
    p.set_defaults(func=cmd_exemplars)
    p = sub.add_parser("evaluate", help="corpus BLEU and chrF per direction (sacrebleu)")
    p.add_argument("data", help="translation JSONL with references")
    p.add_argument(
        "--predictions",
        required=True,
        help="JSONL of {id, translation|completion|exemplar}, or an exemplar file",
    )
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ChatError) as exc:
        print(f"rewardkit-translation {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
