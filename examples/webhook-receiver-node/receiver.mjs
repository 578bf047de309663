// A receiver of genviral-relay's webhooks: verifies each delivery's signature over the raw body (Standard
// Webhooks, which also refuses a timestamp more than five minutes away), skips a delivery it already took,
// and hands the event on. No framework: Node's own HTTP server and the `standardwebhooks` package.
//
//   npm install standardwebhooks
//   GENVIRAL_WEBHOOK_SECRET=whsec_... node receiver.mjs    # listens on PORT (3000) at HOST (0.0.0.0)
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.GENVIRAL_WEBHOOK_SECRET); // "whsec_...", from POST /webhooks
const MAX_BODY_BYTES = 1024 * 1024;

// Delivery is at least once: dedupe on webhook-id (the event id) for a day at least. A Set lasts as long as
// the process; keep the ids in your database to survive restarts and to share them between instances.
const seen = new Set();

function handle(event) {
  // Quickly, or queue it: an answer after 10 s counts as a failure and the delivery is retried.
  console.log(`${event.event_type} ${event.event_id}`);
}

const server = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/genviral") return res.writeHead(404).end();
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) req.destroy();
    else chunks.push(chunk);
  });
  req.on("end", () => {
    let event;
    try {
      event = webhook.verify(Buffer.concat(chunks).toString("utf8"), req.headers);
    } catch (error) {
      console.error(`refused: ${error.message}`);
      return res.writeHead(400).end();
    }
    const id = req.headers["webhook-id"];
    if (!seen.has(id)) {
      handle(event);
      seen.add(id); // once handled: a delivery whose handling failed is taken again on its retry
    }
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "0.0.0.0", () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}/genviral`);
});
