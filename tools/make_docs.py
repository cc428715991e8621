"""Build the book: execute every chapter (nbs/*.ipynb, in order) and render it, with its outputs, to HTML under _docs/.

Each notebook runs in its own kernel and process (nbclient, as `jupyter nbconvert --execute` does), from nbs/ as
`nbdev_test` runs it, and is rendered with nbconvert's `lab` template, figures embedded. The nbdev directives are
honoured: `#| eval: false` cells and cells flagged with a `tst_flags` word of settings.ini (`slow`, `cuda`, `notest`)
are shown but not run (with a note), `#| hide` cells are run but not shown, `#| echo: false` shows only the output,
`#| output: false` only the code, and the `#|` lines themselves are not shown. `_docs/index.html` lists the chapters in
order with the title and subtitle of each (its first `# ` heading and `> ` line).

A chapter that fails to execute or render fails the command: exit status 1, the chapter and its error named.
Usage: `python tools/make_docs.py [--jobs 2] [--out _docs] [nbs/X.ipynb ...]` (`make docs`).
"""
import argparse, configparser, html, json, os, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
DIRECTIVE = re.compile(r'^\s*#\|\s*(.*?)\s*$')


def shown(p: Path) -> str: return str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)


def chapters(nbs: Path = NBS) -> list:
    "The chapter notebooks in reading order (file name order), as tools/run_tests.py finds them."
    return sorted(p for p in nbs.rglob('*.ipynb') if not any(part.startswith(('.', '_')) for part in p.relative_to(nbs).parts))


def skip_flags() -> set:
    "The `tst_flags` of settings.ini: cells flagged with one of them are not run (as in `nbdev_test`)."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())


def directives(source: str) -> dict:
    "nbdev directives at the top of a cell: '#| eval: false' -> {'eval': 'false'}, '#| hide' -> {'hide': ''}."
    out = {}
    for line in source.splitlines():
        m = DIRECTIVE.match(line)
        if not m:
            if line.strip(): break
            continue
        parts = m.group(1).split(None, 1)
        if parts: out[parts[0].rstrip(':')] = parts[1].strip() if len(parts) > 1 else ''
    return out


def strip_directives(source: str) -> str:
    "The cell's source without its leading `#|` lines."
    lines = source.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (DIRECTIVE.match(lines[i]) or not lines[i].strip()): i += 1
    return ''.join(lines[i:])


def title_of(nb) -> tuple:
    "(title, subtitle): the first '# ' heading of the notebook's markdown, and the '> ' line after it."
    for c in nb.cells:
        if c.cell_type != 'markdown': continue
        lines = c.source.splitlines()
        for i, line in enumerate(lines):
            if line.startswith('# '):
                sub = next((l[1:].strip() for l in lines[i + 1:] if l.startswith('>')), '')
                return line[2:].strip(), sub
    return '', ''


def prepare(nb, flags: set) -> list:
    "Tag the cells for nbclient and nbconvert as their directives say; returns the indices of cells not run."
    not_run = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code': continue
        d = directives(c.source)
        tags = set(c.metadata.get('tags', []))
        why = ('eval: false' if d.get('eval', '').lower() == 'false' else
               ', '.join(sorted(flags & set(d))) or ('nbdev_export' if 'nbdev_export' + '(' in c.source else ''))
        if why:
            tags.add('skip-execution'); not_run.append(i)
            c.source = f'# not run for this page ({why})\n' + strip_directives(c.source)
        else: c.source = strip_directives(c.source)
        if 'hide' in d or not c.source.strip(): tags.add('remove_cell')  # also a cell of directives only (`#| default_exp`)
        if d.get('echo', '').lower() == 'false': tags.add('remove_input')
        if d.get('output', '').lower() == 'false': tags.add('remove_output')
        if tags: c.metadata['tags'] = sorted(tags)
    for c in nb.cells:
        if c.cell_type == 'markdown' and 'hide' in directives(c.source): c.metadata['tags'] = ['remove_cell']
    return not_run


def render_one(nb_path: Path, out: Path, timeout: int) -> dict:
    "Execute one notebook and write out/<name>.html; returns its title, subtitle and counts."
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    nb = nbformat.read(nb_path, as_version=4)
    title, subtitle = title_of(nb)
    not_run = prepare(nb, skip_flags())
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(nb_path.parent)}},
                            skip_cells_with_tag='skip-execution', store_widget_state=False)
    client.execute()
    seconds = time.time() - t0
    tags = TagRemovePreprocessor(remove_cell_tags={'remove_cell'}, remove_input_tags={'remove_input'},
                                 remove_all_outputs_tags={'remove_output'}, enabled=True)
    exporter = HTMLExporter(template_name='lab')
    exporter.register_preprocessor(tags, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title or nb_path.stem}})
    nav = (f'<nav style="font:14px sans-serif;padding:8px 16px;border-bottom:1px solid #ddd"><a href="index.html">nsd: all chapters</a>'
           f' · <code>{html.escape(shown(nb_path))}</code> · executed in {seconds:.0f} s</nav>')
    body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body, count=1)
    (out / f'{nb_path.stem}.html').write_text(body)
    return {'title': title, 'subtitle': subtitle, 'seconds': round(seconds, 1), 'not_run': len(not_run),
            'cells': sum(c.cell_type == 'code' for c in nb.cells)}


def write_index(out: Path, results: list):
    """out/index.html: every chapter in order with its title and subtitle, linked where its page exists (built now or
    earlier); a chapter that failed now is marked, and so is one that was never built."""
    import nbformat
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    name, desc = cfg['DEFAULT'].get('lib_name', 'nsd'), cfg['DEFAULT'].get('description', '')
    now = {nb: err for nb, _, err in results}
    rows = []
    for nb in sorted(set(chapters()) | set(now)):
        try: title, subtitle = title_of(nbformat.read(nb, as_version=4))
        except Exception: title, subtitle = '', ''
        code = lambda x: re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(x))  # markdown code spans
        t, sub = code(title or nb.stem), code(subtitle)
        if now.get(nb): link = f'{t} <b style="color:#b00">(failed to render)</b>'
        elif (out / f'{nb.stem}.html').is_file(): link = f'<a href="{nb.stem}.html">{t}</a>'
        else: link = f'{t} <i>(not built)</i>'
        rows.append(f'<li>{link} <span class="file">{html.escape(nb.name)}</span><br><span class="sub">{sub}</span></li>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title>
<style>body{{font:16px/1.5 sans-serif;max-width:880px;margin:2em auto;padding:0 1em}} li{{margin:.6em 0}}
.file{{color:#777;font:13px monospace}} .sub{{color:#444;font-size:14px}}</style></head>
<body><h1>{html.escape(name)}</h1><p>{html.escape(desc)}</p>
<p>Every chapter below was executed when its page was built; its figures are the outputs of that run.</p>
<ol>
{chr(10).join(rows)}
</ol>
<p style="color:#777;font-size:13px">index written {time.strftime('%Y-%m-%d %H:%M %Z')} by tools/make_docs.py</p>
</body></html>
"""
    (out / 'index.html').write_text(page)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(ROOT / '_docs'), help='output folder (default _docs/)')
    ap.add_argument('--jobs', type=int, default=2, help='chapters executed at once')
    ap.add_argument('--timeout', type=int, default=1500, help='seconds allowed per cell')
    ap.add_argument('--one', help=argparse.SUPPRESS)  # internal: render this notebook in this process, print its info as JSON
    ap.add_argument('paths', nargs='*', help='notebooks (default: every chapter under nbs/)')
    a = ap.parse_args()
    out = Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    if a.one:
        print('NSD-DOCS ' + json.dumps(render_one(Path(a.one).resolve(), out, a.timeout)))
        return 0
    nbs = [Path(p).resolve() for p in a.paths] or chapters()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'), MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('MPLBACKEND', None)  # the kernel's inline backend puts the figures in the page

    def run(nb):
        t0 = time.time()
        r = subprocess.run([sys.executable, __file__, '--one', str(nb), '--out', str(out), '--timeout', str(a.timeout)],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        line = [l for l in r.stdout.splitlines() if l.startswith('NSD-DOCS ')]
        if r.returncode == 0 and line: return nb, json.loads(line[-1][9:]), None, time.time() - t0
        import nbformat
        try: title, subtitle = title_of(nbformat.read(nb, as_version=4))
        except Exception: title, subtitle = '', ''
        return nb, {'title': title, 'subtitle': subtitle}, (r.stdout + r.stderr).strip() or f'exit status {r.returncode}', time.time() - t0

    t_all, results = time.time(), []
    with ThreadPoolExecutor(a.jobs) as ex:
        for nb, info, err, dt in ex.map(run, nbs):
            results.append((nb, info, err))
            name = shown(nb)
            if err:
                print(f'FAIL  {name}  ({dt:.0f} s)', flush=True)
                print('\n'.join('    ' + l for l in err.splitlines()[-40:]), flush=True)
            else:
                note = f", {info['not_run']} cell(s) not run" if info['not_run'] else ''
                print(f'OK    {name}  ({dt:.0f} s){note} -> {out.name}/{nb.stem}.html', flush=True)
    write_index(out, results)
    failed = [nb for nb, _, err in results if err]
    print(f'{len(results) - len(failed)} rendered, {len(failed)} failed, {time.time() - t_all:.0f} s; index: {out / "index.html"}')
    if failed:
        print('chapters that failed: ' + ', '.join(map(shown, failed)), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
