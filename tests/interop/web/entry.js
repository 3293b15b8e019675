// The browser cells of tests/interop: third-party WHIP/WHEP clients from npm, driven by the page's query.
// esbuild bundles this file at test time (offline, from node_modules). Everything the page learns is
// POSTed to /report on the page's own origin, where the Python side collects it.
import { WHIPClient } from '@eyevinn/whip-web-client';
import { WebRTCPlayer } from '@eyevinn/webrtc-player';

const q = new URLSearchParams(location.search);
const report = (data) => fetch('/report', { method: 'POST', body: JSON.stringify(data) }).catch(() => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function videoStat(pc, type) {
  let out = null;
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => { if (s.type === type && s.kind === 'video') out = s; });
  return out;
}

async function publish(state) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  // no STUN: the library's default is a public Google server, unreachable (and unwanted) on loopback
  const client = new WHIPClient({ endpoint: q.get('whip'), opts: { iceServers: [], noTrickleIce: true, timeout: 1500 } });
  await client.ingest(media);
  state.publishing = true;
  return client;
}

async function play(state, want, seconds) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const player = new WebRTCPlayer({ video, type: 'whep', iceServers: [] });
  const started = performance.now();
  // the first picture, as the page shows it (the player's own stats event comes only every 5 s)
  video.requestVideoFrameCallback(() => { state.firstFrameMs = performance.now() - started; });
  await player.load(new URL(q.get('whep')));
  for (let i = 0; i < seconds * 4 && (state.framesDecoded || 0) < want; i++) {
    await sleep(250);
    const got = await videoStat(player.peer, 'inbound-rtp');
    state.framesDecoded = got ? got.framesDecoded || 0 : 0;
    await report({ ...state, phase: 'playing' });
  }
  state.playMs = performance.now() - started;
  player.destroy();
}

async function main() {
  const state = { mode: q.get('mode') };
  const want = Number(q.get('frames') || '30');
  const seconds = Number(q.get('seconds') || '15');
  try {
    if (state.mode === 'publish') {
      const client = await publish(state);
      for (let i = 0; i < seconds * 2; i++) {
        await sleep(500);
        const sent = await videoStat(client.peer, 'outbound-rtp');
        state.framesEncoded = sent ? sent.framesEncoded : 0;
        await report({ ...state, phase: 'publishing' });
      }
      await client.destroy();
    } else if (state.mode === 'play') {
      await play(state, want, seconds);
    } else if (state.mode === 'late') {
      // publish, then join as a viewer only after `delay` seconds: the viewer needs a fresh keyframe
      const client = await publish(state);
      // the delay counts from the moment media flows, so "late" means late for the stream, not the page
      for (let i = 0; i < 40 && client.peer.connectionState !== 'connected'; i++) await sleep(250);
      state.publisherState = client.peer.connectionState;
      await sleep(Number(q.get('delay') || '10') * 1000);
      const sender = async (when) => {
        // what the publisher saw: keyframes it made and keyframe requests (PLI) that reached it
        const sent = await videoStat(client.peer, 'outbound-rtp');
        state.framesEncoded = sent ? sent.framesEncoded : 0;
        state[when] = sent ? { keyFramesEncoded: sent.keyFramesEncoded, pliCount: sent.pliCount,
                               firCount: sent.firCount, frameWidth: sent.frameWidth } : null;
      };
      await sender('publisherAtJoin');
      await play(state, want, seconds);
      await sender('publisherAfterPlay');
      await client.destroy();
    } else {
      throw new Error('unknown mode ' + state.mode);
    }
    await report({ ...state, phase: 'done' });
  } catch (e) {
    await report({ ...state, phase: 'error', error: String(e && e.stack ? e.stack : e) });
  }
}

main();
