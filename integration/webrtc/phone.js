// The test phone: one JsSIP user agent per page, driven by the Go tests
// (integration/browser.go) through chromedp, which awaits the promises
// returned here. Calls, incoming or outgoing, are numbered from 1. Each
// call's events are kept, so a wait that starts after its event still
// sees it, and so a failed wait can say what did happen instead.
'use strict';

const phone = (() => {
  let ua = null;
  const wire = []; // every SIP message sent and received, in order
  const calls = []; // calls[n - 1]: {session, events: [{event, ...}]}
  const incoming = []; // numbers of incoming calls not yet handed out
  const waiters = new Set(); // pending waits, re-checked on each event

  // The media of every call: audio only, from Chromium's fake device;
  // no STUN or TURN server, so ICE has only this machine's own host
  // candidates.
  const media = {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [] },
  };

  // loopbackOnly drops the ICE candidates of an SDP that are not on
  // 127.0.0.1. Chromium gathers host candidates on every interface and
  // would as soon pick the machine's LAN or IPv6 address. With only
  // loopback offered and answered, media goes to 127.0.0.1, or now and
  // then to another address of this machine that a connectivity check
  // came from (ICE also checks from candidates it does not signal, and
  // learns those as peer-reflexive): it never leaves the machine.
  function loopbackOnly(e) {
    if (e.originator !== 'local') {
      return;
    }
    // a=candidate:foundation component transport priority address port typ ...
    e.sdp = e.sdp
      .split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === '127.0.0.1')
      .join('\r\n');
  }

  // TapSocket is JsSIP's WebSocket transport keeping a copy of the
  // traffic: the tests read the REGISTER as JsSIP sent it, and a failed
  // step shows what came back even when JsSIP dropped it (a 200 whose
  // Contact does not match its own is ignored, not reported).
  // _onMessage is JsSIP's private receive hook (pinned version).
  class TapSocket extends JsSIP.WebSocketInterface {
    send(message) {
      wire.push({ dir: 'sent', data: message });
      return super.send(message);
    }
    _onMessage(ev) {
      const data = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data);
      wire.push({ dir: 'received', data });
      super._onMessage(ev);
    }
  }

  function check() {
    for (const w of waiters) {
      w.check();
    }
  }

  // until resolves with what probe returns once it returns something
  // and rejects with what probe throws or, after ms, with what() as the
  // reason. probe runs on every phone event and every 100 ms (for what
  // has no event of ours, e.g. a peer connection's state).
  function until(probe, ms, what) {
    return new Promise((resolve, reject) => {
      const w = {
        check() {
          let v;
          try {
            v = probe();
          } catch (err) {
            done();
            reject(err);
            return;
          }
          if (v !== undefined) {
            done();
            resolve(v);
          }
        },
      };
      const poll = setInterval(() => w.check(), 100);
      const timer = setTimeout(() => {
        done();
        reject(new Error(what()));
      }, ms);
      const done = () => {
        clearInterval(poll);
        clearTimeout(timer);
        waiters.delete(w);
      };
      waiters.add(w);
      w.check();
    });
  }

  // track numbers a session and records its events; invite is the
  // INVITE of an incoming call as received.
  function track(session, invite = '') {
    const call = { session, invite, events: [] };
    calls.push(call);
    const record = (event) => (e = {}) => {
      const res = e.message && e.message.status_code ? e.message : e.response;
      call.events.push({
        event,
        originator: e.originator || '',
        cause: e.cause || '',
        code: res && res.status_code ? res.status_code : 0,
        reason: res && res.reason_phrase ? res.reason_phrase : '',
      });
      check();
    };
    for (const event of ['progress', 'accepted', 'confirmed', 'ended', 'failed']) {
      session.on(event, record(event));
    }
    return calls.length;
  }

  function callOf(n) {
    const call = calls[n - 1];
    if (!call) {
      throw new Error(`no call ${n}`);
    }
    return call;
  }

  return {
    // register starts the user agent for uri over the WebSocket server
    // at url and resolves once JsSIP reports it registered, with the 200
    // as received and what JsSIP made of it. config is added to JsSIP's
    // UA configuration (e.g. instance_id).
    register(url, uri, config = {}, ms = 10000) {
      if (ua) {
        throw new Error('already registered');
      }
      ua = new JsSIP.UA({ ...config, uri, sockets: [new TapSocket(url)], register: true });
      let failure = '';
      ua.on('registrationFailed', (e) => {
        failure = `registration failed: ${e.cause}` + (e.response ? ` (${e.response.status_code} ${e.response.reason_phrase})` : '');
        check();
      });
      let response = null;
      ua.on('registered', (e) => {
        response = e.response;
        check();
      });
      ua.on('newRTCSession', (e) => {
        if (e.originator === 'remote') {
          e.session.on('sdp', loopbackOnly);
          incoming.push(track(e.session, e.request.data));
          check();
        }
      });
      ua.start();
      return until(() => {
        if (failure) {
          throw new Error(failure);
        }
        if (!response) {
          return undefined;
        }
        return {
          response: response.data,
          instance: ua.configuration.instance_id,
          contact: ua.contact.toString(),
          pubGruu: ua.contact.pub_gruu || '',
          tempGruu: ua.contact.temp_gruu || '',
        };
      }, ms, () => `not registered within ${ms} ms`).catch((err) => {
        // Rejected from the probe (registrationFailed) or by the timer.
        throw new Error(`${err.message}; SIP messages:\n${phone.wire()}`);
      });
    },

    // call calls target and returns the call's number at once.
    call(target) {
      // The handler is passed in, not added after: ua.call may emit
      // before it returns.
      return track(ua.call(target, { ...media, eventHandlers: { sdp: loopbackOnly } }));
    },

    // nextIncoming resolves with the number of the next incoming call and
    // its INVITE as received.
    nextIncoming(ms = 10000) {
      return until(() => {
        if (incoming.length === 0) {
          return undefined;
        }
        const n = incoming.shift();
        return { call: n, invite: callOf(n).invite };
      }, ms, () => `no incoming call within ${ms} ms`);
    },

    answer(n) {
      callOf(n).session.answer(media);
    },

    // reject answers an incoming call that is still ringing with code.
    reject(n, code) {
      callOf(n).session.terminate({ status_code: code });
    },

    // hangup ends a call: BYE once confirmed, CANCEL while ringing.
    hangup(n) {
      callOf(n).session.terminate();
    },

    // wait resolves with the first of call n's events named event, or an
    // event that ends the call ('failed', 'ended'), whichever comes
    // first, so that a call that failed says how.
    wait(n, event, ms = 10000) {
      const call = callOf(n);
      return until(
        () => call.events.find((e) => e.event === event || e.event === 'failed' || e.event === 'ended'),
        ms,
        () => `call ${n}: no ${event} within ${ms} ms; events: ${JSON.stringify(call.events)}`,
      );
    },

    // media resolves once call n's media flows: the peer connection is
    // connected (ICE and DTLS done). It resolves with the candidate pair
    // ICE chose, local and remote (a peer-reflexive remote candidate has
    // its address hidden by Chromium).
    async media(n, ms = 10000) {
      const session = callOf(n).session;
      await until(() => {
        const state = session.connection ? session.connection.connectionState : 'none';
        if (state === 'failed' || state === 'closed') {
          throw new Error(`call ${n}: peer connection ${state}`);
        }
        return state === 'connected' ? true : undefined;
      }, ms, () => `call ${n}: media not connected within ${ms} ms (peer connection ${session.connection ? session.connection.connectionState : 'none'})`);
      const stats = await session.connection.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          pair = stats.get(s.selectedCandidatePairId);
        }
      });
      if (!pair) {
        throw new Error(`call ${n}: connected, but no selected candidate pair in the stats`);
      }
      const at = (id) => {
        const c = stats.get(id);
        return { address: c.address || '', port: c.port, type: c.candidateType, protocol: c.protocol };
      };
      return { local: at(pair.localCandidateId), remote: at(pair.remoteCandidateId) };
    },

    // messages is the SIP traffic so far: [{dir: 'sent'|'received', data}].
    messages() {
      return wire;
    },

    // wire is the SIP traffic so far as text, for failure reports.
    wire() {
      return wire.map((m) => `--- ${m.dir}:\n${m.data}`).join('\n');
    },

    // stop unregisters and closes the connection.
    stop() {
      if (ua) {
        ua.stop();
      }
    },
  };
})();
