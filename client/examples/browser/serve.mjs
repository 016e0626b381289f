// Serves this folder's index.html and main.js on http://127.0.0.1:PORT (default 5173),
// a secure context for the camera. Usage: node serve.mjs [port]
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

const TYPES = { '/': ['index.html', 'text/html'], '/index.html': ['index.html', 'text/html'], '/main.js': ['main.js', 'text/javascript'] };
const port = Number(process.argv[2] ?? process.env.PORT ?? 5173);
createServer(async (req, res) => {
  const file = TYPES[new URL(req.url ?? '/', 'http://x').pathname];
  if (!file) return void res.writeHead(404).end('not found');
  try {
    res.writeHead(200, { 'content-type': file[1] }).end(await readFile(new URL(file[0], import.meta.url)));
  } catch {
    res.writeHead(404).end(`${file[0]} is missing: npm run build`);
  }
}).listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/`));
