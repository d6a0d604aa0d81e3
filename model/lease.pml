/*
 * hafront: who may answer for a VIP under the lease driver (doc/lease.md), as a SPIN model.
 * The argument it checks is doc/lease-safety.md; model/check.sh runs it and its variants.
 *
 * PROPERTY (the monitor at the end, checked in every reachable state):
 *   at most one node answers for the VIP,
 * where a node answers iff it is powered and the lease in its kernel is valid (local clock
 * before the expiry): what bpf/lease.bpf.c decides. The VIP lives on lo with
 * arp_ignore=1/arp_announce=2, so nothing else on the node answers for it; neither a paused
 * daemon nor a paused Corosync stops the answers, only the expiry or a power-off does.
 *
 * WHAT IS MODELLED, as implemented in src/cluster/cluster_manager.cc:
 *   - three nodes, one leased VIP, a table owner, a coordinator (lowest-id member that is
 *     not silent) that assigns the VIP and fences lost or silent nodes;
 *   - Corosync: one ordered stream. A configuration change (CF) is installed by each group
 *     of nodes that can talk, at any time after a fault (but a flapping node installs
 *     none until the merge, FAULTS), with extended virtual synchrony (below). Quorum: a
 *     majority of the three Corosyncs (votes are Corosync's, not the daemons'). CPG
 *     members are the live daemons of the group;
 *   - state messages with the sender's holding flag and table version; an ack entry for
 *     every state a member delivers (the implementation sends it at once for a holder's
 *     state and in the next state otherwise), renewal from the newest own state acknowledged so that, with this
 *     node, a majority of the configured nodes has it (nodes proven down count), only
 *     while quorate, not silent and synced (every member's table offer of the current
 *     configuration is in; at that moment evaluate() runs first, then the renewal);
 *     renewal from the own state delivered back when nobody else is needed (the others
 *     fenced), under the same conditions;
 *   - attestation (lease_expired) after lease + margin without a state of the node on the
 *     attester's own clock, the clock started over at every membership change for members
 *     and for nodes that were not members; validity (the view and seq check) decided
 *     where the implementation decides it: the attester had delivered every state of the
 *     node and every configuration change ordered before its attestation;
 *   - the proof: valid attestations of every member that is not silent, except the node;
 *     it frees the VIP and declares a member silent; a silent node expires its lease;
 *   - hold: a node holds the VIP when the table names it and no other node that is not
 *     proven down (fenced or lease-expired) may hold it, member or not: a node may hold it
 *     when its latest state says so, or when it was assigned the VIP and has not sent a
 *     state since that was at the table version of the deciding node (states carry the
 *     version; a node sends one after every assign); the table offers after a
 *     configuration change carry the lost nodes that may hold it; while the table sync
 *     of a configuration is in progress a node keeps what it holds (evaluate():
 *     `if (may_hold && !synced_) return;`);
 *   - acquire sets the kernel lease to the node's lease; release expires it first; a
 *     daemon that starts expires whatever its previous life left in the kernel.
 *
 * FAULTS (at most FAULTS of them in a run, any order, any time): power-off of a node;
 * kill -9 of a daemon (it restarts later as a fresh member; the kernel keeps the last
 * expiry meanwhile); SIGSTOP of a daemon or of the whole node (daemon and Corosync), and
 * SIGCONT; a node cut off, and healed; a link flap (FLAPS): one node cut off long enough
 * for the others to install a configuration without it (and to attest, prove and move the
 * VIP), while its own Corosync installs none (its configuration is broken: it sends
 * nothing and receives nothing new; its daemon keeps its membership, its table and what
 * it holds, and its kernel lease runs out), then the link comes back and the rings merge
 * into one configuration of all of them, in which the flapped node sees every other member
 * leave and join again at once (FLAPNODES: the nodes that may flap). The coordinator may
 * fence (power off) a lost or silent node (FENCES); any member may declare any other
 * silent at any time (SILENCES), which over-approximates the liveness timeout; the
 * coordinator may move the VIP between live members (MOVES).
 *
 * TIME. Global time advances in ticks. Each clock reads local = global + off, 0 <= off <=
 * DRIFT, never backwards (CLOCK_BOOTTIME): in a tick a clock advances by 1, or (at most
 * SLIPS times in a run) one clock advances by 0 or 2 while it stays in that band. Every duration a node measures is on its own clock, so it
 * is off by at most DRIFT ticks, whatever its length; DRIFT stands for the rate error over
 * lease + margin. Within an intact configuration a running daemon processes what was sent
 * before the next tick (a tick stands for more than a delivery takes; a daemon slower
 * than that is a paused one); a paused daemon processes it later, in order.
 * Counters saturate, so the state space is finite while time runs forever.
 *
 * EXTENDED VIRTUAL SYNCHRONY at an install, for every earlier entry that members of the
 * new group still have to process: kept for all of them if its sender is in the group or
 * one of them already processed it; otherwise kept for all of them or dropped for all of
 * them (either). Then the CF. Nobody sends in a configuration that is broken.
 *
 * VARIANTS (-D), each a rule taken out. A sound check must catch each; model/check.sh
 * catches NO_HANDSHAKE and NEW_OWNER_ONLY (with FREE_ORDER) and RENEW_UNSYNCED (with
 * FLAPS), not yet the others within
 * the budgets that complete (doc/lease-safety.md, "Status of the model check"):
 *   RENEW_SELF         renew from one's own state delivered back, not from acks
 *   PROOF_OWN          a proof completes on one attestation
 *   ATTEST_NOSEQ       attestations are not checked against what their sender delivered
 *   MARGIN=0           no drift margin
 *   HOLD_MEMBERS_ONLY  a new holder waits only for members to stop advertising the VIP
 *                      (as first implemented: a holder lost in the middle of a move kept
 *                      answering while the new one took it)
 *   NO_HANDSHAKE       a new holder trusts a node's latest state even when that node has
 *                      not processed the latest assign yet (as first implemented: after two
 *                      moves in a row, the first assignee acted on its stale assign)
 *   NEW_OWNER_ONLY     an assign marks only the new owner as "may hold", not the owner it
 *                      replaces (as implemented until this model, with FREE_ORDER, found
 *                      the owner of the first of two moves taking the VIP on its own
 *                      stale assign while the second assignee took it too)
 *   RENEW_UNSYNCED     renew from acks while the table sync of a new configuration is in
 *                      progress (as implemented until the chaos suite found it: a holder
 *                      back from a link flap its own ring never saw renewed from the new
 *                      members' acks while the others' holder answered too)
 * and FREE_ORDER takes out the search's lowest-id-first delivery reduction (below).
 */

#define N 3
#define MAJ 2
#define NONE 3
#ifndef LEASE
#define LEASE 2          /* L: lease length, ticks */
#endif
#ifndef MARGIN
#define MARGIN 2         /* M: margin; must cover 2 * DRIFT */
#endif
#ifndef DRIFT
#define DRIFT 1
#endif
#define CAP (LEASE + MARGIN)
#ifndef FAULTS
#define FAULTS 2
#endif
#ifndef FENCES
#define FENCES 1
#endif
#ifndef SILENCES
#define SILENCES 1
#endif
#ifndef MOVES
#define MOVES 1
#endif
#ifndef QMAX
#define QMAX 12
#endif
#define RESERVE 3        /* slots only configuration changes may take */
/* Which faults may happen (1/0). */
#ifndef CRASHES
#define CRASHES 1
#endif
#ifndef KILLS
#define KILLS 1
#endif
#ifndef DPAUSES
#define DPAUSES 1
#endif
#ifndef NPAUSES
#define NPAUSES 1
#endif
#ifndef CUTS
#define CUTS 1
#endif
#ifndef FLAPS
#define FLAPS 1
#endif
#ifndef FLAPNODES
#define FLAPNODES 7      /* the nodes whose link may flap (a bit each) */
#endif
#ifndef INSTALL_LAG
#define INSTALL_LAG 1    /* ticks a broken configuration may last before the next is installed */
#endif
#ifndef SLIPS
#define SLIPS 2          /* clock slips in a run */
#endif
#ifndef VMAX
#define VMAX 8
#endif

/* Entry kinds. */
mtype = { CF_, FN_, SL_, AS_, LX_, SY_, AK_, ST_ };
#define ST 1   /* state: a1 holding, a2 table version */
#define AK 2   /* ack of node a1's state (only a1 reads it) */
#define SY 3   /* table offer: a1 owner, a2 version, a3 proven (fenced), a4 lease-expired,
                * a5 lost nodes that advertised holding */
#define LX 4   /* lease_expired about a1; a2 valid */
#define AS 5   /* assign to a1 */
#define SL 6   /* silent: a1 */
#define FN 7   /* fenced: a1 */
#define CF 8   /* configuration: a1 CPG members, a2 quorate */

typedef Msg {
  byte k; byte f; byte a1; byte a2; byte a3; byte a4; byte a5;
  byte r;       /* ST: local ticks left of the lease it may start, on its sender's clock;
                  AK: the same for the state it acknowledges, on that state's sender's clock */
  byte need;     /* daemons that still have to process it */
  byte done      /* daemons that processed it */
};
Msg q[QMAX];
byte qn;

/* The world. */
byte net;                 /* 0 all connected; 1..N: node net-1 cut off */
byte flp;                 /* 0, or 1..N: node flp-1's link flaps: its Corosync installs no
                           * configuration of its own until the rings merge */
byte nf, nfence, nsil, nmove, nslip;
bit up[N];                /* powered */
bit cp[N];                /* Corosync stopped (node SIGSTOP) */
bit dp[N];                /* daemon stopped (SIGSTOP) */
bit dd[N];                /* daemon dead (kill -9), until restarted */
byte off[N];              /* clock offset */
byte lease[N];            /* the kernel's lease for the VIP: local ticks left */
byte ring[N];             /* the Corosync configuration the node is in */
byte cpgm[N];             /* the live daemons of that configuration */
byte brk;                 /* derived: nodes whose configuration is broken */
byte bage;                /* ticks some configuration has been broken */

/* Each daemon. */
byte mem[N];              /* CPG members, as of the last CF it processed */
bit quo[N];
byte syn[N];              /* members whose offer it has since the last CF */
byte bown[N], bver[N], bfrom[N];
byte own[N], ver[N];      /* its table: the owner, the version */
byte sil[N], lexp[N], fen[N];
byte hld[N];              /* nodes whose latest state (or an offer) said they hold the VIP */
byte sk[N];               /* members whose state it processed since the last CF */
byte attd[N];             /* nodes it attested about since it last heard them */
byte fo[N];               /* fenced results not sent yet */
bit held[N];              /* it holds the VIP (the address is on lo, the gate set) */
bit offd[N];              /* its offer went out in this configuration */
bit pas[N];               /* an assign it sent is not processed yet */
byte nl[N];               /* its lease (lease_until_): local ticks left */
byte hb[N];               /* local ticks since its last state */
byte since[N * N];        /* since[a*N+m]: a's ticks since it last heard m's state */
byte ack[N * N];          /* ack[a*N+m]: rem of a's state m acked last (a's clock) */
byte att[N * N];          /* att[a*N+m]: members with a valid attestation about m */

/* Scratch, zeroed after use so it never tells states apart. */
byte i, j, x, y, g, t, v, c, h, rs, ty, tj, tg, tt;

#define BIT(s, b)   (((s) >> (b)) & 1)
#define CNT(s)      (BIT(s, 0) + BIT(s, 1) + BIT(s, 2))
#define ALL         7
#define SIDE(a)     (net == 0 -> 0 : ((a) == net - 1 -> 1 : 0))
#define CONN(a, b)  (SIDE(a) == SIDE(b))
#define CORO(a)     (up[a] && !cp[a])                 /* its Corosync runs */
#define RUN(a)      (CORO(a) && !dd[a] && !dp[a])     /* its daemon runs */
#define BROKEN(a)   BIT(brk, a)
/* The flapping node while it is cut off: its configuration is broken (it neither sends
 * nor receives) but it installs none; only the merge ends it. */
#define FLAPPED     (flp != 0 && net == flp -> (1 << (flp - 1)) : 0)
#define INST(a)     (CORO(a) && BROKEN(a) && qn < QMAX && !BIT(FLAPPED, a))
#define CANSEND(a)  (RUN(a) && !BROKEN(a) && BIT(mem[a], a) && qn < QMAX - RESERVE)
#define SYNCED(a)   (((syn[a] | sil[a]) & mem[a]) == mem[a])
#define ME_OK(a)    (quo[a] && BIT(mem[a], a) && !BIT(sil[a], a) && !BIT(lexp[a], a))
/* try_renew() runs only once the node has the table of the current membership (and
 * evaluate() has released what that table does not give it); RENEW_UNSYNCED: as before
 * the fix, also while the table sync is in progress. */
#ifdef RENEW_UNSYNCED
#define RENEW_OK(a) ME_OK(a)
#else
#define RENEW_OK(a) (ME_OK(a) && SYNCED(a))
#endif
#define PROVEN(a, m) BIT(fen[a] | lexp[a], m)
#ifdef HOLD_MEMBERS_ONLY
#define CLR1(a, m)  ((m) == (a) || !BIT(hld[a], m) || !BIT(mem[a], m) || PROVEN(a, m))
#else
#define CLR1(a, m)  ((m) == (a) || !BIT(hld[a], m) || PROVEN(a, m))
#endif
#define CLEAR(a)    (CLR1(a, 0) && CLR1(a, 1) && CLR1(a, 2))
#define CAND(a, m)  (BIT(mem[a], m) && !BIT(sil[a], m) && !BIT(lexp[a], m))
#define COORD(a)    (CAND(a, 0) -> 0 : (CAND(a, 1) -> 1 : (CAND(a, 2) -> 2 : NONE)))
#define LEADS(a)    (CANSEND(a) && ME_OK(a) && SYNCED(a) && ((sk[a] | sil[a] | (1 << (a))) & mem[a]) == mem[a] && COORD(a) == (a))
/* The owner may change: none, proven down, or (a move) a live member. */
#define FREE(a)     (own[a] == NONE || PROVEN(a, own[a]) || (CAND(a, own[a]) && nmove < MOVES))
#define ANS(a)      (up[a] && lease[a] > 0)
#define SAT(v, s)   v = ((v) > (s) -> (v) - (s) : 0)

inline topo() {
  brk = 0; ty = 0;
  do
  :: ty < N ->
     if
     :: CORO(ty) ->
        tg = 0; tt = 0; tj = 0;
        do
        :: tj < N ->
           if :: CORO(tj) && CONN(ty, tj) -> tg = tg | (1 << tj); if :: !dd[tj] -> tt = tt | (1 << tj) :: else -> skip fi
              :: else -> skip fi;
           tj++
        :: else -> break
        od;
        if :: ring[ty] != tg || cpgm[ty] != tt || flp == ty + 1 -> brk = brk | (1 << ty) :: else -> skip fi
     :: else -> skip
     fi;
     ty++
  :: else -> break
  od;
  ty = 0; tj = 0; tg = 0; tt = 0
}

/* Append an entry for the CPG members of the sender's configuration. A newer state or ack
 * from the same sender supersedes one its receivers have not processed yet (a paused
 * daemon would only read it to be overridden by the newer one): this bounds the queue. */
inline put(kk, ff, x1, x2, x3, x4, x5) {
  if
  :: kk == ST || kk == AK ->
     i = 0;
     do
     :: i < qn ->
        if :: q[i].f == ff && kk == q[i].k && (kk == ST || q[i].a1 == x1) -> q[i].need = q[i].need & ~cpgm[ff]
           :: else -> skip fi;
        i++
     :: else -> break
     od;
     i = 0
  :: else -> skip
  fi;
  q[qn].k = kk; q[qn].f = ff; q[qn].a1 = x1; q[qn].a2 = x2; q[qn].a3 = x3; q[qn].a4 = x4; q[qn].a5 = x5;
  q[qn].need = (kk == AK -> cpgm[ff] & (1 << x1) : cpgm[ff]); q[qn].done = 0;
  q[qn].r = (kk == ST -> LEASE : (kk == AK -> x2 : 0));
  assert(qn < QMAX);   /* a model bound, not the property: raise QMAX */
  qn++
}

/* Drop entries nobody needs, keeping the order. */
inline compact() {
  i = 0; c = 0;
  do
  :: i < qn ->
     if
     :: q[i].need != 0 ->
        if
        :: c != i ->
           q[c].k = q[i].k; q[c].f = q[i].f; q[c].a1 = q[i].a1; q[c].a2 = q[i].a2; q[c].a3 = q[i].a3;
           q[c].a4 = q[i].a4; q[c].a5 = q[i].a5; q[c].r = q[i].r; q[c].need = q[i].need; q[c].done = q[i].done
        :: else -> skip
        fi;
        c++
     :: else -> skip
     fi;
     i++
  :: else -> break
  od;
  i = c;
  do
  :: i < qn ->
     q[i].k = 0; q[i].f = 0; q[i].a1 = 0; q[i].a2 = 0; q[i].a3 = 0; q[i].a4 = 0; q[i].a5 = 0;
     q[i].r = 0; q[i].need = 0; q[i].done = 0; i++
  :: else -> break
  od;
  qn = c; i = 0; c = 0
}

inline expire(a) { nl[a] = 0; lease[a] = 0 }

inline sendst(a) { if :: CANSEND(a) -> put(ST, a, held[a], ver[a], 0, 0, 0); hb[a] = 0 :: else -> skip fi }

/* try_renew(): from the acks (rule: with this node, a majority of the configured nodes;
 * nodes proven down by a fence count). With three nodes one ack is needed, or none. Only
 * once synced (RENEW_OK). */
inline renew(a) {
  if
  :: RENEW_OK(a) && CNT(fen[a] & ~mem[a]) == 0 ->
     v = 0; j = 0;
     do
     :: j < N -> if :: j != a && BIT(mem[a], j) && !BIT(sil[a], j) && ack[a * N + j] > v -> v = ack[a * N + j]
                    :: else -> skip fi; j++
     :: else -> break
     od;
     if :: v > nl[a] -> nl[a] = v; if :: held[a] -> lease[a] = v :: else -> skip fi :: else -> skip fi;
     v = 0; j = 0
  :: else -> skip
  fi
}

/* evaluate(): release at once when it may not keep the VIP; hold when the table names it
 * and nobody unproven advertises it (only once synced; while syncing keep what is held). */
inline evaluate(a) {
  if
  :: !ME_OK(a) ->
     expire(a);
     if :: held[a] -> held[a] = 0; sendst(a) :: else -> skip fi
  :: ME_OK(a) && SYNCED(a) && held[a] && !(own[a] == a && CLEAR(a)) ->
     printf("%d releases\n", a); lease[a] = 0; held[a] = 0; sendst(a)
  :: ME_OK(a) && SYNCED(a) && !held[a] && own[a] == a && CLEAR(a) ->
     printf("%d acquires (lease %d)\n", a, nl[a]); held[a] = 1; lease[a] = nl[a]; sendst(a)
  :: else -> skip
  fi
}

/* The proof about m, in a's view. */
inline proof(a, m) {
  g = mem[a] & ~sil[a] & ~(1 << (m));
#ifdef PROOF_OWN
  if :: att[a * N + m] != 0 ->
#else
  if :: (att[a * N + m] & g) == g ->
#endif
        printf("%d: proof about %d\n", a, m); lexp[a] = lexp[a] | (1 << (m));
        if :: BIT(mem[a], m) -> sil[a] = sil[a] | (1 << (m)) :: else -> skip fi
     :: else -> skip
  fi;
  g = 0
}

/* Daemon a processes entry e. */
inline effect(a, e) {
  x = q[e].f;
  if
  :: q[e].k == ST || q[e].k == AK ->
     if
     :: x != a ->
        if
        :: q[e].k == ST ->
#ifdef NO_HANDSHAKE
           hld[a] = (hld[a] & ~(1 << x)) | (q[e].a1 << x);
#else
           /* It may hold the VIP if it says so, or if it has not seen every assign this
            * node has (an assign to it may still be acted on). */
           hld[a] = (q[e].a2 >= ver[a] -> (hld[a] & ~(1 << x)) | (q[e].a1 << x) : hld[a] | (q[e].a1 << x));
#endif
           since[a * N + x] = 0; att[a * N + x] = 0; attd[a] = attd[a] & ~(1 << x);
           if :: BIT(mem[a], x) -> sk[a] = sk[a] | (1 << x) :: else -> skip fi;
           /* The ack: at once for a holder's state; for any other state the next state of
            * this node carries it (here: an ack entry too, as soon as it can send). */
           if :: BIT(mem[a], x) && CANSEND(a) -> put(AK, a, x, q[e].r, 0, 0, 0) :: else -> skip fi
        :: else ->
           /* An ack of this node's state. */
           if :: BIT(mem[a], x) && q[e].a1 == a && q[e].r > ack[a * N + x] -> ack[a * N + x] = q[e].r :: else -> skip fi;
           renew(a)
        fi
     :: else ->
#ifdef RENEW_SELF
        if :: q[e].k == ST && ME_OK(a) && q[e].r > nl[a] -> nl[a] = q[e].r; if :: held[a] -> lease[a] = nl[a] :: else -> skip fi
           :: else -> skip fi
#else
        /* Nobody else needed (the others proven down): its own state, delivered back. */
        if :: q[e].k == ST && RENEW_OK(a) && CNT(fen[a] & ~mem[a]) >= 1 && q[e].r > nl[a] ->
              nl[a] = q[e].r; if :: held[a] -> lease[a] = nl[a] :: else -> skip fi
           :: else -> skip fi
#endif
     fi
  :: q[e].k == SY ->
     if
     :: BIT(mem[a], x) ->
        h = SYNCED(a);
        syn[a] = syn[a] | (1 << x);
        fen[a] = fen[a] | (q[e].a3 & ~mem[a]);
        lexp[a] = lexp[a] | (q[e].a4 & ~mem[a]);
        hld[a] = hld[a] | (q[e].a5 & ~mem[a]);
        if :: q[e].a2 > bver[a] || (q[e].a2 == bver[a] && x < bfrom[a]) -> bown[a] = q[e].a1; bver[a] = q[e].a2; bfrom[a] = x
           :: else -> skip fi;
        /* The best offer becomes the table once every member's offer is in (later
         * offers of this configuration change nothing). */
        if :: !h && SYNCED(a) -> own[a] = bown[a]; ver[a] = bver[a]; rs = 1 :: else -> skip fi;
        h = 0
     :: else -> skip
     fi
  :: q[e].k == LX ->
     y = q[e].a1;
#ifdef ATTEST_NOSEQ
     if :: BIT(mem[a], x) && x != y && !BIT(lexp[a], y) ->
#else
     if :: BIT(mem[a], x) && x != y && !BIT(lexp[a], y) && q[e].a2 ->
#endif
           att[a * N + y] = att[a * N + y] | (1 << x); proof(a, y)
        :: else -> skip
     fi;
     y = 0
  :: q[e].k == AS ->
     if
     :: x == COORD(a) ->
#if !defined(NO_HANDSHAKE) && !defined(NEW_OWNER_ONLY)
        /* The owner it replaces may still act on the assign that made it the owner (its
         * state at that version may have said "not holding" while it waited): it may
         * hold until a state of it at the new version. */
        if :: own[a] != NONE -> hld[a] = hld[a] | (1 << own[a]) :: else -> skip fi;
#endif
        own[a] = q[e].a1; assert(ver[a] < VMAX); ver[a]++;
#ifndef NO_HANDSHAKE
        /* The assignee may act on it before it sees a later one: it may hold. */
        hld[a] = hld[a] | (1 << q[e].a1);
#endif
        sendst(a)
     :: else -> skip
     fi;
     if :: x == a -> pas[a] = 0 :: else -> skip fi
  :: q[e].k == SL ->
     if :: BIT(mem[a], q[e].a1) -> sil[a] = sil[a] | (1 << q[e].a1) :: else -> skip fi
  :: q[e].k == FN ->
     if :: !(BIT(mem[a], q[e].a1) && !BIT(sil[a], q[e].a1)) -> fen[a] = fen[a] | (1 << q[e].a1) :: else -> skip fi
  :: q[e].k == CF ->
     /* joined: fresh members. A node whose own ring never broke while the others' did (a
      * flap, a3) sees every other member leave and join again at once. */
     h = (BIT(q[e].a3, a) -> q[e].a1 & ~(1 << a) : q[e].a1 & ~mem[a] & ~(1 << a));
     hld[a] = hld[a] & ~h; lexp[a] = lexp[a] & ~h; fen[a] = fen[a] & ~h; sil[a] = sil[a] & ~h;
     j = 0;
     do
     :: j < N ->
        /* Silence counts on from the last state only for a node that was a member and
         * left; for every other node it starts over. */
        if :: j != a && (BIT(q[e].a1, j) || !BIT(mem[a], j)) -> since[a * N + j] = 0 :: else -> skip fi;
        att[a * N + j] = 0; ack[a * N + j] = 0; j++
     :: else -> break
     od;
     j = 0; h = 0;
     mem[a] = q[e].a1; quo[a] = q[e].a2;
     syn[a] = 0; sk[a] = 0; attd[a] = 0; pas[a] = 0; offd[a] = 0;
     bown[a] = NONE; bver[a] = 0; bfrom[a] = NONE;
     sendst(a)
  fi;
  x = 0;
  evaluate(a);
  /* On sync completion: release what the table does not give it first, then renew from
   * the acks gathered while the offers came in. */
  if :: rs -> renew(a); rs = 0 :: else -> skip fi
}

/* Daemon a processes its next entry. */
inline deliver(a) {
  c = 0;
  do
  :: c < qn && !BIT(q[c].need, a) -> c++
  :: else -> break
  od;
  t = c; c = 0;
  printf("  %d processes %e from %d (%d %d) r=%d\n", a, q[t].k, q[t].f, q[t].a1, q[t].a2, q[t].r);
  q[t].need = q[t].need & ~(1 << a); q[t].done = q[t].done | (1 << a);
  effect(a, t);
  printf("      -> %d: own %d ver %d hld %d mem %d sil %d lexp %d fen %d held %d\n", a, own[a], ver[a], hld[a], mem[a], sil[a], lexp[a], fen[a], held[a]);
  t = 0;
  compact()
}

#define PENDING(a)  (q[0].need & (1 << (a)) || q[1].need & (1 << (a)) || q[2].need & (1 << (a)) || \
                     q[3].need & (1 << (a)) || q[4].need & (1 << (a)) || q[5].need & (1 << (a)) || \
                     q[6].need & (1 << (a)) || q[7].need & (1 << (a)) || q[8].need & (1 << (a)) || \
                     q[9].need & (1 << (a)) || q[10].need & (1 << (a)) || q[11].need & (1 << (a)))
/* An attestation is valid when its sender has processed every state of m and every
 * configuration change ordered before it (cluster_manager.cc: view and seq check). */
inline attest(a, m) {
  v = 1; c = 0;
  do
  :: c < qn -> if :: BIT(q[c].need, a) && (q[c].k == CF || (q[c].k == ST && q[c].f == m)) -> v = 0 :: else -> skip fi; c++
  :: else -> break
  od;
  c = 0;
  printf("%d attests about %d (valid %d)\n", a, m, v);
  put(LX, a, m, v, 0, 0, 0);
  attd[a] = attd[a] | (1 << (m));
  v = 0
}

/* Install the next configuration for the group that node s can talk to. */
inline install(s) {
  g = 0; t = 0; j = 0;
  do
  :: j < N ->
     if :: CORO(j) && CONN(s, j) -> g = g | (1 << j); if :: !dd[j] -> t = t | (1 << j) :: else -> skip fi
        :: else -> skip fi;
     j++
  :: else -> break
  od;
  j = 0;
  /* Extended virtual synchrony for what the group still has to process. */
  c = 0;
  do
  :: c < qn ->
     if
     :: (q[c].need & t) != 0 && !BIT(t, q[c].f) && (q[c].done & t) == 0 ->
        if :: skip :: q[c].need = q[c].need & ~t fi
     :: else -> skip
     fi;
     c++
  :: else -> break
  od;
  c = 0;
  j = 0;
  do
  :: j < N -> if :: BIT(g, j) -> ring[j] = g; cpgm[j] = t :: else -> skip fi; j++
  :: else -> break
  od;
  j = 0;
  printf("install ring %d cpg %d\n", g, t);
  /* The rings merge: the flapping node is in this configuration, its first since the flap. */
  if :: flp != 0 && BIT(g, flp - 1) -> h = 1 << (flp - 1); flp = 0 :: else -> h = 0 fi;
  q[qn].k = CF; q[qn].f = s; q[qn].a1 = t; q[qn].a2 = (CNT(g) >= MAJ); q[qn].a3 = h; q[qn].a4 = 0;
  q[qn].a5 = 0; q[qn].r = 0; q[qn].need = t; q[qn].done = 0;
  qn++;
  g = 0; t = 0; h = 0;
  compact();
  topo()
}

/* A node powers off: nothing of it runs or answers; nothing waits for it. */
inline poweroff(a) {
  up[a] = 0; lease[a] = 0;
  if :: flp == a + 1 -> flp = 0 :: else -> skip fi;
  c = 0;
  do
  :: c < qn -> q[c].need = q[c].need & ~(1 << (a)); c++
  :: else -> break
  od;
  c = 0;
  compact();
  topo()
}

/* A daemon starts (again): a fresh member; it expires whatever the kernel holds. */
inline fresh(a) {
  dd[a] = 0; lease[a] = 0; nl[a] = 0; held[a] = 0;
  mem[a] = 0; quo[a] = 0; syn[a] = 0; own[a] = NONE; ver[a] = 0; bown[a] = NONE; bver[a] = 0; bfrom[a] = NONE;
  sil[a] = 0; lexp[a] = 0; fen[a] = 0; hld[a] = 0; sk[a] = 0; attd[a] = 0; fo[a] = 0; offd[a] = 0; pas[a] = 0; hb[a] = 0;
  j = 0;
  do
  :: j < N -> since[a * N + j] = 0; ack[a * N + j] = 0; att[a * N + j] = 0; j++
  :: else -> break
  od;
  j = 0;
  topo()
}

/* Time: every clock advances 1, or 0 / 2 within its band; every local counter with it. */
inline age(a, s) {
  SAT(lease[a], s); SAT(nl[a], s);
  hb[a] = (hb[a] + s > 1 -> 1 : hb[a] + s);
  j = 0;
  do
  :: j < N ->
     since[a * N + j] = (since[a * N + j] + s > CAP -> CAP : since[a * N + j] + s);
     SAT(ack[a * N + j], s);
     j++
  :: else -> break
  od;
  c = 0;
  do
  :: c < qn -> if :: (q[c].k == ST && q[c].f == a) || (q[c].k == AK && q[c].a1 == a) -> SAT(q[c].r, s) :: else -> skip fi; c++
  :: else -> break
  od;
  j = 0; c = 0
}
/* A tick: every clock advances 1; or (SLIPS budget) one clock advances 0 or 2, staying
 * within its band. */
#define SLIP(a, s)  :: nslip < SLIPS && ((s == 0 && off[a] > 0) || (s == 2 && off[a] < DRIFT)) -> \
                       nslip++; off[a] = off[a] + s - 1; age(a, s); \
                       if :: a != 0 -> age(0, 1) :: else -> skip fi; \
                       if :: a != 1 -> age(1, 1) :: else -> skip fi; \
                       if :: a != 2 -> age(2, 1) :: else -> skip fi
/* Deliveries by different daemons are taken lowest id first (a reduction: it fixes the
 * order in which two running daemons' reactions to the same entries enter the stream,
 * while each daemon's own sends still race with its pending deliveries). FREE_ORDER
 * takes the reduction out: every interleaving of deliveries. */
#ifdef FREE_ORDER
#define BUSYBELOW(a) false
#else
#define BUSYBELOW(a) ((a) > 0 && RUN(0) && PENDING(0) || (a) > 1 && RUN(1) && PENDING(1))
#endif
#define ATT1(a, m)  ((a) != (m) && !BIT(lexp[a] | fen[a] | attd[a], m) && since[(a) * N + (m)] >= CAP)
#define NEW1(a, m)  (CAND(a, m) && own[a] != (m))
#define FEN1(a, m)  ((a) != (m) && up[m] && (!BIT(mem[a], m) || BIT(sil[a], m)) && !BIT(fen[a], m))
#define SIL1(a, m)  ((a) != (m) && BIT(mem[a], m) && !BIT(sil[a], m))
/* Time waits for what must happen first: a running daemon of an intact configuration
 * processes what was sent (within DELAY ticks) and sends its heartbeat. */
#define URGENT(a)   (INST(a) && bage >= INSTALL_LAG || RUN(a) && !BROKEN(a) && (PENDING(a) || CANSEND(a) && (hb[a] >= 1 || !offd[a] || fo[a] || \
                     ATT1(a, 0) || ATT1(a, 1) || ATT1(a, 2) || \
                     LEADS(a) && !pas[a] && (own[a] == NONE || PROVEN(a, own[a])) && (NEW1(a, 0) || NEW1(a, 1) || NEW1(a, 2)))))

inline tick() {
  atomic {
    !URGENT(0) && !URGENT(1) && !URGENT(2) ->
    if :: (brk & ~FLAPPED) != 0 && bage < INSTALL_LAG -> bage++ :: (brk & ~FLAPPED) == 0 -> bage = 0 :: else -> skip fi;
    if
    :: age(0, 1); age(1, 1); age(2, 1)
    SLIP(0, 0) SLIP(0, 2) SLIP(1, 0) SLIP(1, 2) SLIP(2, 0) SLIP(2, 2)
    fi;
    printf("TICK off=%d%d%d lease=%d,%d,%d nl=%d,%d,%d held=%d%d%d\n", off[0], off[1], off[2], lease[0], lease[1], lease[2],
           nl[0], nl[1], nl[2], held[0], held[1], held[2])
  }
}

#define A(a) \
  :: atomic { RUN(a) && PENDING(a) && !BUSYBELOW(a) -> deliver(a) } \
  :: atomic { CANSEND(a) && hb[a] >= 1 -> sendst(a); compact() } \
  :: atomic { CANSEND(a) && !offd[a] -> put(SY, a, own[a], ver[a], fen[a], lexp[a], hld[a] & ~mem[a] & ~fen[a] & ~lexp[a]); offd[a] = 1; compact() } \
  :: atomic { CANSEND(a) && fo[a] -> x = (BIT(fo[a], 0) -> 0 : (BIT(fo[a], 1) -> 1 : 2)); \
              if :: !(BIT(mem[a], x) && !BIT(sil[a], x)) -> put(FN, a, x, 0, 0, 0, 0); fo[a] = fo[a] & ~(1 << x) \
                 :: else -> skip fi; x = 0; compact() } \
  :: atomic { CANSEND(a) && (ATT1(a, 0) || ATT1(a, 1) || ATT1(a, 2)) -> \
       if \
       :: a != 0 && !BIT(lexp[a] | fen[a] | attd[a], 0) && since[a * N + 0] >= CAP -> attest(a, 0) \
       :: a != 1 && !BIT(lexp[a] | fen[a] | attd[a], 1) && since[a * N + 1] >= CAP -> attest(a, 1) \
       :: a != 2 && !BIT(lexp[a] | fen[a] | attd[a], 2) && since[a * N + 2] >= CAP -> attest(a, 2) \
       fi; compact() } \
  :: atomic { LEADS(a) && !pas[a] && FREE(a) && (NEW1(a, 0) || NEW1(a, 1) || NEW1(a, 2)) -> \
       if \
       :: CAND(a, 0) && own[a] != 0 -> y = 0 \
       :: CAND(a, 1) && own[a] != 1 -> y = 1 \
       :: CAND(a, 2) && own[a] != 2 -> y = 2 \
       fi; \
       if :: own[a] != NONE && !PROVEN(a, own[a]) -> nmove++ :: else -> skip fi; \
       printf("%d assigns to %d\n", a, y); put(AS, a, y, 0, 0, 0, 0); pas[a] = 1; y = 0; compact() } \
  :: atomic { LEADS(a) && nfence < FENCES && (FEN1(a, 0) || FEN1(a, 1) || FEN1(a, 2)) -> \
       if \
       :: a != 0 && up[0] && (!BIT(mem[a], 0) || BIT(sil[a], 0)) && !BIT(fen[a], 0) -> y = 0 \
       :: a != 1 && up[1] && (!BIT(mem[a], 1) || BIT(sil[a], 1)) && !BIT(fen[a], 1) -> y = 1 \
       :: a != 2 && up[2] && (!BIT(mem[a], 2) || BIT(sil[a], 2)) && !BIT(fen[a], 2) -> y = 2 \
       fi; \
       nfence++; printf("%d fences %d\n", a, y); poweroff(y); fo[a] = fo[a] | (1 << y); y = 0 } \
  :: atomic { CANSEND(a) && nsil < SILENCES && (SIL1(a, 0) || SIL1(a, 1) || SIL1(a, 2)) -> \
       if \
       :: a != 0 && BIT(mem[a], 0) && !BIT(sil[a], 0) -> y = 0 \
       :: a != 1 && BIT(mem[a], 1) && !BIT(sil[a], 1) -> y = 1 \
       :: a != 2 && BIT(mem[a], 2) && !BIT(sil[a], 2) -> y = 2 \
       fi; \
       nsil++; printf("%d declares %d silent\n", a, y); put(SL, a, y, 0, 0, 0, 0); y = 0; compact() } \
  :: atomic { INST(a) -> install(a) }

/* Faults. Listed before everything else in the loop: the depth-first search tries the
 * first option first, so it explores faults early instead of after every fault-free run
 * (the same states, in a better order for finding a counterexample). */
#define F(a) \
  :: atomic { CRASHES && nf < FAULTS && up[a] -> nf++; printf("FAULT power off %d\n", a); poweroff(a) } \
  :: atomic { KILLS && nf < FAULTS && RUN(a) -> nf++; printf("FAULT kill daemon %d\n", a); dd[a] = 1; \
       c = 0; do :: c < qn -> q[c].need = q[c].need & ~(1 << (a)); c++ :: else -> break od; c = 0; \
       compact(); topo() } \
  :: atomic { up[a] && dd[a] -> printf("daemon %d starts\n", a); fresh(a) } \
  :: atomic { DPAUSES && nf < FAULTS && RUN(a) -> nf++; printf("FAULT pause daemon %d\n", a); dp[a] = 1 } \
  :: atomic { CORO(a) && dp[a] && !dd[a] -> printf("resume daemon %d\n", a); dp[a] = 0 } \
  :: atomic { NPAUSES && nf < FAULTS && RUN(a) -> nf++; printf("FAULT pause node %d\n", a); cp[a] = 1; dp[a] = 1; topo() } \
  :: atomic { up[a] && cp[a] -> printf("resume node %d\n", a); cp[a] = 0; dp[a] = 0; topo() }

#define NET(s) :: atomic { CUTS && nf < FAULTS && flp == 0 && net != s -> nf++; printf("FAULT net %d\n", s); net = s; topo() }
/* The others whose Corosync runs have installed a configuration without a. */
#define OUT1(a, j)  ((j) == (a) || !CORO(j) || !BIT(ring[j], a))
#define WITHOUT(a)  (OUT1(a, 0) && OUT1(a, 1) && OUT1(a, 2))
/* A link flap of node a: cut off long enough for the others to install a configuration
 * without it (and attest, prove, move), while its own Corosync installs none; then the
 * link comes back and the rings merge into one configuration (install clears flp). */
#define FLAP(a) :: atomic { FLAPS && BIT(FLAPNODES, a) && nf < FAULTS && net == 0 && flp == 0 && CORO(a) -> nf++; \
                            printf("FAULT flap %d\n", a); net = a + 1; flp = a + 1; topo() }
#define FLAPEND :: atomic { flp != 0 && net == flp && WITHOUT(flp - 1) -> printf("flap %d: link back\n", flp - 1); net = 0; topo() }

init {
  atomic {
    /* Three daemons in one quorate, synced configuration; node 0 owns and holds the VIP
     * with a fresh lease, renewed from states every member just delivered. */
    y = 0;
    do
    :: y < N ->
       up[y] = 1; ring[y] = ALL; cpgm[y] = ALL; mem[y] = ALL; quo[y] = 1; syn[y] = ALL; sk[y] = ALL;
       own[y] = 0; ver[y] = 1; offd[y] = 1; hld[y] = 1; nl[y] = LEASE; bown[y] = NONE; bfrom[y] = NONE;
       y++
    :: else -> break
    od;
    j = 0; y = 0;
    held[0] = 1; lease[0] = LEASE;
    ack[0 * N + 1] = LEASE; ack[0 * N + 2] = LEASE; ack[1 * N + 0] = LEASE; ack[1 * N + 2] = LEASE;
    ack[2 * N + 0] = LEASE; ack[2 * N + 1] = LEASE;
    topo()
  };
  do
  F(0) F(1) F(2)
  NET(0) NET(1) NET(2) NET(3)
  FLAP(0) FLAP(1) FLAP(2)
  :: tick()
  A(0)
  A(1)
  A(2)
  /* Last: the search first follows the others' protocol during a flap (the proof and the
   * move take a few ticks), then tries the merge in each of those states. */
  FLAPEND
  od
}

active proctype monitor() {
end:
  atomic { !(ANS(0) + ANS(1) + ANS(2) <= 1) -> assert(false) }
}
