// graphql-ws's own client (the reference implementation of graphql-transport-ws) talking
// to nhigov as a portal would: a query over the socket, then a subscription.
//
//   TOKEN=... node subscribe.mjs ws://127.0.0.1:PORT/graphql/ws [COUNT]
//
// Prints one JSON line per step: {"event":"connected"}, {"event":"me",...},
// {"event":"subscribed"}, {"event":"next","data":...} per event, and
// {"event":"closed","code":...} if the server closes. Exits 0 after COUNT events.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, count = '1'] = process.argv.slice(2);
const print = (o) => console.log(JSON.stringify(o));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { token: process.env.TOKEN },
  lazy: false,
  retryAttempts: 0,
  on: {
    connected: () => print({ event: 'connected' }),
    closed: (e) => {
      print({ event: 'closed', code: e.code, reason: e.reason });
      process.exit(e.code === 1000 ? 0 : 2);
    },
  },
});

const failed = (e) => {
  print({ event: 'error', error: e instanceof Error ? e.message : e });
  process.exit(1);
};

const me = await new Promise((resolve, reject) => {
  let result;
  client.subscribe(
    { query: '{ me { email } }' },
    { next: (r) => (result = r), error: reject, complete: () => resolve(result) },
  );
}).catch(failed);
print({ event: 'me', email: me?.data?.me?.email ?? null });

let seen = 0;
client.subscribe(
  { query: 'subscription { alertRaised { kind detail alert { title severity } } }' },
  {
    next: (r) => {
      print({ event: 'next', data: r.data, errors: r.errors ?? null });
      seen += 1;
      if (seen >= Number(count)) {
        client.dispose();
        process.exit(0);
      }
    },
    error: failed,
    complete: () => {},
  },
);
print({ event: 'subscribed' });
