"""`garagelab llm install|serve|chat`."""

from __future__ import annotations

import argparse
import sys
import time

from garagelab.core.cliargs import positive_int, whole_number_up_to

# 0 lets the system pick a free port; 70000 was passed on and printed as the address being served
PORT = whole_number_up_to(65535, "a TCP port is at most 65535 (0: any free one)")


def register(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    install = verbs.add_parser(
        "install",
        help="build llama-server and fetch a model into the cache (once; make test does it for the default)",
        epilog="examples:\n  garagelab llm install\n  garagelab llm install --model qwen2.5-coder-1.5b",
        formatter_class=fmt,
    )
    install.add_argument("--model", default="", help="smollm2-135m (default), qwen2.5-coder-1.5b or qwen2.5-coder-0.5b")
    install.set_defaults(func=_install)

    serve = verbs.add_parser(
        "serve",
        help="run the local model behind an OpenAI-compatible endpoint on 127.0.0.1 until Ctrl-C",
        epilog="examples:\n  garagelab llm serve --port 8080\n  garagelab llm serve --model path/to/model.gguf",
        formatter_class=fmt,
    )
    serve.add_argument("--model", default="", help="smollm2-135m (default), an installed model's name, or a .gguf path")
    serve.add_argument("--port", type=PORT, default=8080, help="0: any free one")
    serve.add_argument("--context", type=positive_int, default=4096, help="tokens per request (prompt and answer)")
    serve.add_argument("--slots", type=positive_int, default=2, help="requests served at once")
    serve.set_defaults(func=_serve)

    chat = verbs.add_parser(
        "chat",
        help="ask a model one question (the local one by default) and show the answer and token counts",
        epilog="examples:\n  garagelab llm chat 'Write a Python function that adds two numbers.'\n"
        "  garagelab llm chat --base-url https://api.openai.com/v1 --model gpt-4o-mini "
        "--api-key-env OPENAI_API_KEY 'Hello'",
        formatter_class=fmt,
    )
    chat.add_argument("prompt")
    chat.add_argument("--base-url", default="", help="an OpenAI-compatible endpoint (default: start the local one)")
    chat.add_argument("--model", default="", help="the model id (remote) or GGUF (local)")
    chat.add_argument("--api-key-env", default="", help="environment variable holding the API key")
    chat.add_argument("--max-tokens", type=positive_int, default=256)
    chat.add_argument("--completion", action="store_true", help="plain completion instead of chat")
    chat.set_defaults(func=_chat)


def _install(args: argparse.Namespace) -> int:
    from garagelab.llm.install import DEFAULT_MODEL, install_model, install_server

    print(f"llama-server: {install_server()}\nmodel: {install_model(args.model or DEFAULT_MODEL)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from garagelab.llm.install import DEFAULT_MODEL
    from garagelab.llm.server import LocalServer

    with LocalServer(args.model or DEFAULT_MODEL, context=args.context, slots=args.slots, port=args.port) as server:
        print(f"serving {server.model.name} at {server.base_url} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from garagelab.llm.client import ClientConfig, LLMClient

    def ask(client: LLMClient) -> None:
        if args.completion:
            call = client.complete(args.prompt)
        else:
            call = client.chat([{"role": "user", "content": args.prompt}])
        print(call.text)
        print(
            f"[{call.model}: {call.prompt_tokens} tokens in, {call.completion_tokens} out, {call.latency_s:.2f} s]",
            file=sys.stderr,
        )

    if args.base_url:
        ask(
            LLMClient(
                ClientConfig(
                    base_url=args.base_url,
                    model=args.model or "default",
                    api_key_env=args.api_key_env,
                    max_tokens=args.max_tokens,
                )
            )
        )
        return 0
    from garagelab.llm.install import DEFAULT_MODEL
    from garagelab.llm.server import LocalServer

    with LocalServer(args.model or DEFAULT_MODEL) as server:
        ask(LLMClient(server.client_config(max_tokens=args.max_tokens)))
    return 0
