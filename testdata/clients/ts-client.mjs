// Drives remotemcp with a real TypeScript SDK client, as a user's MCP host
// would: connect, discover, call the notes tools (including the confirmed
// delete), read resources, get a prompt, complete an argument.
//
//   node ts-client.mjs <mcp-url> v1            # @modelcontextprotocol/sdk 1.x: legacy session (2025-11-25)
//   node ts-client.mjs <mcp-url> v2 <mode>     # @modelcontextprotocol/client 2.x: mode legacy | auto | 2026-07-28 (pinned)
//
// Prints one JSON line with what it observed and exits non-zero on any
// mismatch, so the Go test that runs it can assert on both.
const [url, sdk, mode = 'legacy'] = process.argv.slice(2);
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };

let client, transport;
if (sdk === 'v1') {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  client = new Client({ name: 'ts-v1', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { confirm: true } }));
  transport = new StreamableHTTPClientTransport(new URL(url));
} else {
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const negotiation = mode === 'legacy' || mode === 'auto' ? { mode } : { mode: { pin: mode } };
  client = new Client({ name: 'ts-v2', version: '2.0.0' }, { capabilities: { elicitation: {} }, versionNegotiation: negotiation });
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { confirm: true } }));
  transport = new StreamableHTTPClientTransport(new URL(url));
}

await client.connect(transport);
const out = { sdk, mode, sessionId: transport.sessionId ?? null };
out.protocolVersion = transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.() ?? null;

const tools = (await client.listTools()).tools.map((t) => t.name);
out.tools = tools;
for (const want of ['whoami', 'notes_create', 'notes_search', 'notes_get', 'notes_delete', 'export_notes']) {
  if (!tools.includes(want)) fail(`tools/list lacks ${want}: ${tools}`);
}

const created = await client.callTool({ name: 'notes_create', arguments: { title: `Groceries ${sdk} ${mode}`, body: 'milk, eggs', tags: ['home'] } });
if (created.isError) fail('notes_create: ' + JSON.stringify(created.content));
const note = created.structuredContent;
if (!note?.id || note.uri !== `notes://${note.id}`) fail('notes_create structuredContent: ' + JSON.stringify(created));

const bad = await client.callTool({ name: 'notes_create', arguments: { title: '' } });
if (!bad.isError) fail('empty title was accepted');

const found = await client.callTool({ name: 'notes_search', arguments: { query: 'groceries', tag: 'home' } });
if (!found.structuredContent?.notes?.some((n) => n.id === note.id)) fail('notes_search did not find the note: ' + JSON.stringify(found));

const read = await client.readResource({ uri: note.uri });
if (!read.contents?.[0]?.text?.includes('milk, eggs')) fail('resources/read: ' + JSON.stringify(read));

const prompt = await client.getPrompt({ name: 'draft_note', arguments: { topic: 'groceries' } });
if (!JSON.stringify(prompt.messages).includes(note.title)) fail('draft_note does not build on the related note');

const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'draft_note' }, argument: { name: 'topic', value: 'groc' } });
if (!completion.completion.values.includes(note.title)) fail('completion lacks the title: ' + JSON.stringify(completion));

// The destructive delete asks for confirmation: elicitation/create on a
// legacy session, an MRTR input request on 2026-07-28. Both reach the
// handler above, which accepts.
const deleted = await client.callTool({ name: 'notes_delete', arguments: { id: note.id } });
if (deleted.isError || deleted.structuredContent?.deleted !== true) fail('notes_delete: ' + JSON.stringify(deleted));
out.deleted = true;

await client.close();
console.log(JSON.stringify(out));
// Done: do not wait for pooled keep-alive sockets to time out.
process.exit(0);
