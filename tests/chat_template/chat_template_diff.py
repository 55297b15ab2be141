#!/usr/bin/env python3
"""Differential test of llmserve's chat-template renderer against Python's jinja2.

The reference is jinja2 configured exactly as Hugging Face transformers' _compile_jinja_template
does: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
with tojson overridden by json.dumps(ensure_ascii=False, indent, separators, sort_keys), and the
globals raise_exception (raises TemplateError) and strftime_now (datetime.now().strftime).
(transformers also adds its AssistantTracker `generation` tag; these templates do not use it.)

Every template in templates/ plus models/default's chat_template is rendered over every
conversation in conversations.json with add_generation_prompt true and false, and every snippet in
snippets.txt (separated by lines "=====") over one conversation; the driver's output must match
byte-for-byte, and where the reference fails (syntax error, raise_exception, runtime error) the
driver must fail too (with the same message for raise_exception). Exits 1 with a readable diff on
any mismatch.

Usage: chat_template_diff.py --driver PATH [--source-dir DIR] [-v]
"""
import argparse
import difflib
import json
import os
import subprocess
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    pass


def make_environment():
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def sorted_json(value):
    """nlohmann::json objects iterate in key order; give the reference the same order."""
    if isinstance(value, dict):
        return {k: sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(v) for v in value]
    return value


def reference_messages(messages):
    out = []
    for m in messages:
        d = {"role": m["role"], "content": m["content"]}
        for key in ("name", "tool_call_id", "tool_calls"):
            if key in m:
                d[key] = sorted_json(m[key])
        out.append(d)
    return out


def render_reference(env, source, case):
    try:
        template = env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"compile_error": str(e)}
    # transformers: render(messages=..., tools=..., documents=..., add_generation_prompt=...,
    # **special_tokens, **kwargs) with tools and documents None unless given.
    extra = {"tools": None, "documents": None, **sorted_json(case.get("extra", {}))}
    try:
        out = template.render(messages=reference_messages(case["messages"]),
                              add_generation_prompt=case["add_generation_prompt"],
                              bos_token=case["bos_token"], eos_token=case["eos_token"], **extra)
        return {"output": out}
    except RaisedByTemplate as e:
        return {"raised": str(e)}
    except Exception as e:  # noqa: BLE001 - any reference failure must be a failure for us too
        return {"error": f"{type(e).__name__}: {e}"}


def load_templates(source_dir):
    templates = {}
    template_dir = os.path.join(source_dir, "tests", "chat_template", "templates")
    for name in sorted(os.listdir(template_dir)):
        if name.endswith(".jinja"):
            with open(os.path.join(template_dir, name), encoding="utf-8") as f:
                templates[name] = f.read()
    config = os.path.join(source_dir, "models", "default", "tokenizer_config.json")
    with open(config, encoding="utf-8") as f:
        templates["models/default"] = json.load(f)["chat_template"]
    return templates


def load_snippets(source_dir):
    with open(os.path.join(source_dir, "tests", "chat_template", "snippets.txt"), encoding="utf-8") as f:
        return f.read().split("\n=====\n")


def make_cases(source_dir):
    with open(os.path.join(source_dir, "tests", "chat_template", "conversations.json"),
              encoding="utf-8") as f:
        conversations = json.load(f)
    cases = []
    for conv in conversations:
        for add_generation_prompt in (True, False):
            cases.append({"name": f"{conv['name']} add_generation_prompt={add_generation_prompt}",
                          "messages": conv["messages"], "extra": conv.get("extra", {}),
                          "add_generation_prompt": add_generation_prompt,
                          "bos_token": "<s>", "eos_token": "</s>"})
    return cases


def run_driver(driver, source, cases):
    request = {"template": source, "cases": [{k: v for k, v in c.items() if k != "name"} for c in cases]}
    proc = subprocess.run([driver], input=json.dumps(request).encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        sys.exit(f"chat_template_diff: driver failed ({proc.returncode}): {proc.stderr.decode()}")
    return json.loads(proc.stdout)


def show_diff(expected, actual):
    lines = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                 "jinja2", "llmserve")
    return "".join(line if line.startswith(("---", "+++", "@@")) else repr(line)[1:-1] + "\n"
                   for line in lines)


def compare(ref, ours):
    """Returns None when they agree, else a description."""
    if "compile_error" in ref:
        return None if "output" not in ours else f"reference rejected it ({ref}), llmserve rendered"
    if "output" in ref:
        if "output" not in ours:
            return f"reference rendered, llmserve failed: {ours}"
        if ours["output"] != ref["output"]:
            return "output differs:\n" + show_diff(ref["output"], ours["output"])
        return None
    if "output" in ours:
        return f"reference failed ({ref}), llmserve rendered:\n{ours['output']!r}"
    if "raised" in ref and ours.get("error") != ref["raised"]:
        return f"raise_exception message differs: reference {ref['raised']!r}, llmserve {ours}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", required=True)
    parser.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    env = make_environment()
    cases = make_cases(args.source_dir)
    num_checked = 0
    failures = []
    for name, source in load_templates(args.source_dir).items():
        refs = [render_reference(env, source, c) for c in cases]
        response = run_driver(args.driver, source, cases)
        if "compile_error" in response:
            failures.append(f"{name}: llmserve rejected the template: {response['compile_error']}")
            continue
        for case, ref, ours in zip(cases, refs, response["results"]):
            num_checked += 1
            problem = compare(ref, ours)
            if problem:
                failures.append(f"{name} / {case['name']}: {problem}")
            elif args.verbose:
                print(f"ok {name} / {case['name']}: {next(iter(ref))}")
    snippet_case = dict(cases[2], extra={"x": {"a": 1}})  # system_user, add_generation_prompt=True
    for index, source in enumerate(load_snippets(args.source_dir)):
        ref = render_reference(env, source, snippet_case)
        response = run_driver(args.driver, source, [snippet_case])
        ours = response["results"][0] if "results" in response else response
        num_checked += 1
        problem = compare(ref, ours)
        if problem:
            failures.append(f"snippet {index} {source!r}: {problem}")
        elif args.verbose:
            print(f"ok snippet {index}: {next(iter(ref))}")
    for failure in failures:
        print("FAIL " + failure + "\n")
    print(f"chat_template_diff: {num_checked - len(failures)}/{num_checked} cases match "
          f"(jinja2 {jinja2.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
