"""The explorer in a real browser: JupyterLab on 127.0.0.1 (a token, a free port), headless Chromium driven by selenium.

It opens a copy of nbs/explore.ipynb (so that JupyterLab's autosave never touches the committed notebook), runs all
cells with JupyterLab's Run All command, checks in the DOM that the controls (ipywidgets) and the plots (plotly) are
rendered, changes the trial drop-down as a user would, checks that the plots changed, and saves screenshots.

Exit status: 0 passed, 1 failed, 3 skipped (Chromium or its driver missing and not installable here, or it would not
start; the reason is the last line on stderr). JupyterLab, its kernel and Chromium are stopped at the end, however it ends.
Run by tools/run_tests.py with the notebooks; alone: `python tools/browser_check.py [--out DIR]`.
"""
import argparse, hashlib, json, os, secrets, shutil, signal, socket, subprocess, sys, time, traceback, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = 3
APT_PACKAGES = ('chromium', 'chromium-driver')  # Debian's names


class Skip(Exception):
    "The check cannot run here; the message says why."


def log(msg): print(f'[browser-check {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def find_browser():
    "(chromium, chromedriver) paths, or (None, None)."
    browser = next((p for p in map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome')) if p), None)
    driver = shutil.which('chromedriver') or next((p for p in ('/usr/lib/chromium/chromedriver',) if Path(p).is_file()), None)
    return (browser, driver) if browser and driver else (None, None)


def install_browser(timeout_s: int):
    "Install Debian's chromium and chromium-driver with apt-get (root only); Skip with the reason when it cannot."
    if shutil.which('apt-get') is None: raise Skip('chromium/chromedriver not found and there is no apt-get to install them')
    if os.geteuid() != 0: raise Skip(f'chromium/chromedriver not found; install them as root: apt-get install {" ".join(APT_PACKAGES)}')
    log(f'installing {" ".join(APT_PACKAGES)} with apt-get')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    t0 = time.time()
    for cmd in (['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', *APT_PACKAGES]):
        left = timeout_s - (time.time() - t0)
        try: r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=max(left, 1))
        except subprocess.TimeoutExpired: raise Skip(f'{" ".join(cmd)} did not finish in {timeout_s} s') from None
        if r.returncode != 0:
            last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ['no output']
            raise Skip(f'{" ".join(cmd)} failed (exit {r.returncode}): {last[0]}')
    log(f'installed in {time.time() - t0:.0f} s')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def lab_settings(folder: Path):
    "User settings for this JupyterLab only: every cell attached to the DOM, no news or update pop-ups."
    for plugin, name, value in (('@jupyterlab/notebook-extension', 'tracker', {'windowingMode': 'none'}),
                                ('@jupyterlab/apputils-extension', 'notification', {'fetchNews': 'false', 'checkForUpdates': False})):
        p = folder / plugin / f'{name}.jupyterlab-settings'
        p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(value))


def start_lab(work: Path, port: int, token: str):
    "JupyterLab serving `work/lab`, with its own config, data, runtime and settings folders under `work`."
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / 'jupyter-config'), JUPYTER_DATA_DIR=str(work / 'jupyter-data'),
               JUPYTER_RUNTIME_DIR=str(work / 'jupyter-runtime'), JUPYTERLAB_SETTINGS_DIR=str(work / 'lab-settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(work / 'lab-workspaces'), PYTHONUNBUFFERED='1')
    lab_settings(work / 'lab-settings')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--port-retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work / "lab"}', '--LabApp.expose_app_in_browser=True',
           '--LabApp.news_url=None'] + (['--allow-root'] if os.geteuid() == 0 else [])
    logf = open(work / 'jupyterlab.log', 'w')
    proc = subprocess.Popen(cmd, cwd=work / 'lab', env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, logf


def api(port, token, path, method='GET', timeout=5):
    req = urllib.request.Request(f'http://127.0.0.1:{port}{path}', method=method, headers={'Authorization': f'token {token}'})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        return json.loads(body) if body else None


def wait_for(fn, timeout_s, what, poll=0.5):
    "Poll `fn` until it returns a true value; AssertionError naming `what` after `timeout_s`."
    t0, last = time.time(), None
    while time.time() - t0 < timeout_s:
        try:
            v = fn()
            if v: return v
        except (AssertionError, RuntimeError): raise
        except Exception as e: last = e  # the page or the server not ready yet
        time.sleep(poll)
    raise AssertionError(f'{what}: not after {timeout_s} s' + (f' (last error: {last!r})' if last else ''))


def descendants(pid: int) -> list:
    "Every process below `pid` (from /proc), children first listed."
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f'/proc/{p}/task'):
                kids = [int(k) for k in Path(f'/proc/{p}/task/{task}/children').read_text().split()]
                out += kids; todo += kids
        except OSError: pass
    return out


def stop_browser(driver):
    "Quit Chromium through its driver, then make sure the driver's processes are gone (by their pids)."
    pids = []
    try: pids = [driver.service.process.pid] + descendants(driver.service.process.pid)
    except Exception: pass
    try: driver.quit()
    except Exception as e: log(f'closing Chromium: {e!r}')
    t0 = time.time()
    while time.time() - t0 < 10 and any(Path(f'/proc/{p}').exists() and 'Z' not in proc_state(p) for p in pids): time.sleep(0.2)
    for p in pids:
        if Path(f'/proc/{p}').exists() and 'Z' not in proc_state(p):
            try: os.kill(p, signal.SIGKILL); log(f'killed leftover browser process {p}')
            except OSError: pass


def proc_state(pid) -> str:
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError: return 'Z'


def stop_lab(proc, port, token, work: Path):
    "Shut the kernels and the server down through the API, then by signal; then any kernel still running in `work/lab`."
    if proc.poll() is None:
        try:
            for k in api(port, token, '/api/kernels') or []: api(port, token, f'/api/kernels/{k["id"]}', 'DELETE', timeout=10)
            api(port, token, '/api/shutdown', 'POST')
            proc.wait(15)
        except Exception: pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(10)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    lab = str((work / 'lab').resolve())
    for pid in filter(str.isdigit, os.listdir('/proc')):  # our kernels run in their own session, with cwd work/lab
        try:
            if os.readlink(f'/proc/{pid}/cwd') == lab: os.kill(int(pid), signal.SIGKILL); log(f'killed leftover process {pid}')
        except OSError: pass


JS_STATE = """
const app = window.jupyterapp; if (!app) return null;
const w = app.shell.currentWidget; if (!w || !w.content || !w.sessionContext) return {ready: false};
const cells = w.content.widgets, kernel = w.sessionContext.session && w.sessionContext.session.kernel;
return {ready: true, kernel: kernel ? kernel.status : null, n: cells.length,
        executed: cells.filter(c => c.model.type === 'code' && c.model.executionCount !== null).length,
        code: cells.filter(c => c.model.type === 'code').length,
        errors: Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')).map(e => e.innerText.slice(-1500))};
"""

JS_PLOTS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => {
  const r = p.getBoundingClientRect(), svg = p.querySelector('svg.main-svg');
  const title = p.querySelector('.gtitle');
  return {w: r.width, h: r.height, svg: !!svg, title: title ? title.textContent : '',
          traces: (p.data || []).length, html: Array.from(p.querySelectorAll('svg.main-svg')).map(s => s.outerHTML).join('')};
});
"""


def check(out: Path, timeout_s: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser, driver_path = find_browser()
    if not browser: install_browser(timeout_s=240); browser, driver_path = find_browser()
    if not browser: raise Skip('chromium/chromedriver still not found after apt-get install')
    log(f'browser {browser}, driver {driver_path}')

    work = out / 'work'
    shutil.rmtree(work, ignore_errors=True); (work / 'lab').mkdir(parents=True)
    shutil.copy(ROOT / 'nbs' / 'explore.ipynb', work / 'lab' / 'explore.ipynb')
    port, token = free_port(), secrets.token_hex(16)
    proc, logf = start_lab(work, port, token)
    driver = None
    t0 = time.time()
    try:
        def up():
            if proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited (status {proc.returncode}): ' + (work / 'jupyterlab.log').read_text()[-1500:])
            return api(port, token, '/api/status')
        wait_for(up, 90, 'JupyterLab answering on 127.0.0.1')
        log(f'JupyterLab on 127.0.0.1:{port} after {time.time() - t0:.0f} s')
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1500,1800',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'):
            opts.add_argument(a)
        try: driver = webdriver.Chrome(service=Service(driver_path, log_output=str(work / 'chromedriver.log')), options=opts)
        except Exception as e: raise Skip(f'Chromium would not start: {type(e).__name__}: {str(e).strip().splitlines()[0]}') from None
        driver.set_script_timeout(30)
        driver.get(f'http://127.0.0.1:{port}/lab/tree/explore.ipynb?token={token}')
        wait_for(lambda: (driver.execute_script(JS_STATE) or {}).get('kernel') == 'idle', 120, 'the notebook open with an idle kernel')
        log(f'notebook open, kernel idle after {time.time() - t0:.0f} s; Run All')
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")

        def done():
            s = driver.execute_script(JS_STATE)
            if s['errors']: raise AssertionError('a cell failed in JupyterLab:\n' + s['errors'][0])
            return s['executed'] == s['code'] and s['kernel'] == 'idle' and s
        try: s = wait_for(done, timeout_s, 'every cell run (Run All)', poll=1)
        except AssertionError as e:
            if 'a cell failed' in str(e): raise
            s = driver.execute_script(JS_STATE)
            raise AssertionError(f'{e}; {s["executed"]} of {s["code"]} code cells have run, kernel {s["kernel"]}') from None
        log(f'{s["code"]} code cells run, no error, after {time.time() - t0:.0f} s')

        # the controls and the plots are rendered
        trial = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, '.nsd-trial select'), 30, 'the trial drop-down (ipywidgets)')
        selects = driver.find_elements(By.CSS_SELECTOR, '.widget-dropdown select')
        audios = driver.find_elements(By.CSS_SELECTOR, 'audio')
        plots = wait_for(lambda: [p for p in driver.execute_script(JS_PLOTS) if p['svg'] and p['w'] > 300 and p['h'] > 150 and p['traces']],
                         60, 'three plotly plots with an svg, a size and traces')
        assert len(plots) >= 3, f'{len(plots)} plotly plots rendered, expected 3'
        assert len(selects) >= 4 and len(audios) >= 2, f'{len(selects)} drop-downs and {len(audios)} audio players rendered'
        names = [s.find_element(By.XPATH, '..').text for s in selects[:4]]
        log(f'rendered: {len(plots)} plots, {len(selects)} drop-downs ({names}), {len(audios)} audio players')
        driver.execute_script('arguments[0].scrollIntoView()', trial)
        driver.save_screenshot(str(out / 'explorer_before.png'))

        # change a control as a user would: another trial in the drop-down
        sel = Select(trial)
        old, new = sel.first_selected_option.text, [o.text for o in sel.options if o.text != sel.first_selected_option.text][0]
        before = [hashlib.sha1(p['html'].encode()).hexdigest() for p in plots]
        sel.select_by_visible_text(new)
        want = new.split(': ', 1)[1]
        label = want.strip("'")

        def changed():
            now = [p for p in driver.execute_script(JS_PLOTS) if p['svg'] and p['traces']]
            return (len(now) >= 3 and any(f"trial {new.split(':')[0]} {want}" in p['title'] for p in now)
                    and now)
        now = wait_for(changed, 60, f'the spectrogram title showing trial {new} after choosing it')
        after = [hashlib.sha1(p['html'].encode()).hexdigest() for p in now]
        n_changed = sum(a != b for a, b in zip(before, after))
        assert n_changed >= 3, f'only {n_changed} of {len(after)} plots changed after the trial change'
        metrics = driver.find_element(By.CSS_SELECTOR, '.nsd-metrics').text
        assert f"trial {new.split(':')[0]} " in metrics and label in metrics, f'the metrics do not show trial {new}: {metrics[:200]}'
        log(f"trial {old} -> {new}: {n_changed} of {len(after)} plots changed, the metrics followed")
        time.sleep(1)
        driver.execute_script('arguments[0].scrollIntoView()', trial)
        driver.save_screenshot(str(out / 'explorer.png'))
        box = driver.find_element(By.XPATH, "//*[contains(@class,'nsd-trial')]/ancestor::div[contains(@class,'jp-OutputArea-output')][1]")
        box.screenshot(str(out / 'explorer_widget.png'))
        log(f'screenshots: {out / "explorer.png"}, {out / "explorer_widget.png"} ({time.time() - t0:.0f} s in all)')
    finally:
        if driver is not None: stop_browser(driver)
        stop_lab(proc, port, token, work)
        logf.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(ROOT / 'runs' / 'browser_check'), help='screenshots and logs (default runs/browser_check)')
    ap.add_argument('--timeout', type=int, default=420, help='seconds allowed for Run All (the first run makes the example batch)')
    a = ap.parse_args()
    out = Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    try: check(out, a.timeout)
    except Skip as e:
        print(f'SKIPPED: {e}', file=sys.stderr); return SKIP
    except Exception as e:
        traceback.print_exc()
        print(f'FAILED: {type(e).__name__}: {e} (logs: {out / "work"})', file=sys.stderr); return 1
    print('PASSED: the explorer rendered in Chromium and followed a control change')
    return 0


if __name__ == '__main__':
    sys.exit(main())
