// The README's browser example, run as written in headless Chromium against a real `lockstep dev`
// node. The page and the SDK bundle come from a server of another origin (another port), so the
// node's CORS answers (src/http/browser-access.ts) are what lets the page read its answers, and
// the SDK runs on the browser's fetch, streams and crypto rather than Node's.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';

const dev = useDevServer('shop', 'lockstep-browser-');

const chromiumPath = '/usr/bin/chromium';
const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));
const clientEntry = fileURLToPath(new URL('../../src/client/index.ts', import.meta.url));
/** Where the README's page imports the SDK from; the page server answers it with the bundle. */
const bundlePath = '/lockstep-client/index.js';
/** The README's placeholder seeds, replaced by the dev node's URL. */
const readmeSeeds = "['https://eu1.example.com', 'https://us1.example.com']";
/** Longest Chromium may take to start, and the page to show its result. */
const launchTimeoutMs = 10_000;
const pageResultTimeoutMs = 10_000;

interface Product {
  readonly id?: string;
  readonly name: string;
  readonly category?: string;
  readonly price: number;
  readonly stock: number;
}

/** What the example writes into the page. */
interface ExampleResult {
  readonly lamp: Product | undefined;
  readonly home: readonly Product[];
  readonly change: { readonly type: string; readonly table: string; readonly id: string; readonly index: number; readonly value?: Partial<Product> };
}

/** The README's one `html` block: the page the test serves, so the two cannot drift apart. */
function readmeBrowserExample(): string {
  const blocks = [...readFileSync(readmePath, 'utf8').matchAll(/```html\n([\s\S]*?)```/g)].map((match) => match[1] as string);
  if (blocks.length !== 1) throw new Error(`expected one html block in README.md (the browser example), found ${blocks.length}`);
  const example = blocks[0] as string;
  for (const expected of [readmeSeeds, `'.${bundlePath}'`]) {
    if (!example.includes(expected)) throw new Error(`README's browser example no longer contains ${expected}, which this test replaces or serves:\n${example}`);
  }
  return example;
}

/** src/client/ as one browser ES module, as a page would load it. */
async function bundleClient(): Promise<string> {
  const result = await build({ entryPoints: [clientEntry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  return (result.outputFiles[0] as { text: string }).text;
}

/** Serves the page at / and the bundle beside it, on 127.0.0.1 (another origin than the node). */
async function servePage(html: string, bundle: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (req.url === bundlePath) res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return server;
}

describe('client SDK in a browser', () => {
  let browser: Browser | undefined;
  let pageServer: Server | undefined;

  afterAll(async () => {
    await browser?.close();
    pageServer?.closeAllConnections();
    await new Promise<void>((resolveClose) => (pageServer === undefined ? resolveClose() : pageServer.close(() => resolveClose())));
  });

  it('runs the README example from another origin: put, get, query, and a subscription that sees the change', { timeout: 30_000 }, async () => {
    // Checked in the test, not in a hook: a hook's failure would count this test as skipped.
    if (!existsSync(chromiumPath)) {
      throw new Error(`${chromiumPath} is missing: this test needs Debian's chromium (apt-get install chromium; .ci/run installs it)`);
    }
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'], timeout: launchTimeoutMs });
    const example = readmeBrowserExample().replace(readmeSeeds, JSON.stringify([dev.server.base]));
    // The script sits in head (a module runs once the document is parsed), so the body holds
    // only what the example writes; an empty icon keeps the favicon request out of the console.
    const html = `<!doctype html>\n<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>lockstep client</title>\n${example}\n</head><body></body></html>\n`;
    pageServer = await servePage(html, await bundleClient());
    const pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    expect(pageOrigin).not.toBe(dev.server.base);

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console error: ${message.text()}`);
    });
    await page.goto(`${pageOrigin}/`, { timeout: pageResultTimeoutMs });
    const text = await page
      // A string expression: it runs in the page, and this project compiles without DOM types.
      .waitForFunction('document.body.textContent.trim()', undefined, { timeout: pageResultTimeoutMs })
      .then((handle) => handle.jsonValue() as Promise<string>)
      .catch((error: unknown) => {
        throw new Error(`the page showed no result within ${pageResultTimeoutMs} ms (${String(error)}); errors: ${JSON.stringify(errors)}`);
      });
    const result = JSON.parse(text) as ExampleResult;

    expect(result.lamp).toMatchObject({ id: 'p1', name: 'Lamp', category: 'home', price: 20, stock: 5 });
    expect(result.home.map((product) => [product.id, product.name])).toEqual([['p1', 'Lamp']]);
    expect(result.change).toMatchObject({ type: 'patch', table: 'Product', id: 'p1', value: { name: 'Lamp', stock: 4 } });
    // The page's write is on the node, as the page reported it.
    const stored = (await (await fetch(`${dev.server.url}/Product/p1`)).json()) as Product;
    expect(stored).toMatchObject({ name: 'Lamp', stock: 4 });
    expect(errors).toEqual([]);
  });
});
