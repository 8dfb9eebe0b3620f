// Builds dist/js-hello.wasm as Spin's http-js template does (esbuild with the
// Spin plugin bundles src/, then j2w componentizes the bundle), and fails when
// no component came out: j2w reports its errors but still exits 0.
// AOT (`--aot`) is never used: it needs a binary from outside the registries.
import { build } from 'esbuild';
import { SpinEsbuildPlugin } from '@spinframework/build-tools/plugins/esbuild/index.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';

const debug = process.argv.includes('--debug');
const output = 'dist/js-hello.wasm';

await build({
    entryPoints: ['./src/index.js'],
    outfile: './build/bundle.js',
    bundle: true,
    format: 'esm',
    platform: 'node',
    sourcemap: true,
    minify: false,
    plugins: [await SpinEsbuildPlugin()],
    logLevel: 'error',
    resolveExtensions: ['.js'],
});

mkdirSync('dist', { recursive: true });
const before = mtime(output);
const args = ['-i', 'build/bundle.js', '--initLocation', 'http://js-hello.localhost', '-o', output];
if (debug) args.unshift('-d');
const j2w = spawnSync(process.execPath, ['node_modules/@spinframework/build-tools/dist/index.js', ...args], {
    encoding: 'utf8',
});
process.stdout.write(j2w.stdout ?? '');
process.stderr.write(j2w.stderr ?? '');
const log = `${j2w.stdout ?? ''}${j2w.stderr ?? ''}`;
const skipped = log.includes('Skipping componentization');
const size = statSync(output, { throwIfNoEntry: false })?.size ?? 0;
const fail = (why) => {
    console.error(`js-hello build failed: ${why}`);
    process.exit(1);
};
if (j2w.error) fail(`could not run j2w: ${j2w.error.message}`);
if (j2w.status !== 0) fail(`j2w exited with ${j2w.status}`);
if (log.includes('An error occurred')) fail('j2w reported an error (see above)');
if (size === 0) fail(`${output} is missing or empty`);
if (!skipped && mtime(output) === before) fail(`j2w did not rewrite ${output}`);
console.log(`${output}: ${size} bytes${skipped ? ' (up to date)' : ''}`);

function mtime(path) {
    return statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? null;
}
