using System.Buffers;
using System.Diagnostics;
using System.Text;
using EioSharp.Kv;

// Usage: EioSharp.Kv.ScriptBench evalsha|evalsha-aof|lua-tables|stream|rdb-write [ops=200000] [rounds=5]
// evalsha-aof: evalsha with an AOF sink (an AofBufferSink over a buffer emptied every 1,024 calls), as the server runs it
// with appendonly yes: the script's effects are captured and written as MULTI/INCR/SET/EXEC.
// Prints one line per round: CPU microseconds per op (process user+system time) and managed bytes allocated per op
// (this thread), then the medians. A warm-up of ops/4 runs first (JIT tiers, tables grown).
// rdb-write (issue 14, the AOF rewrite's RDB preamble): ops keys of 1,024 bytes filled as redis-benchmark -d 1024 fills
// them, one snapshot; each round writes the whole RDB file (LZF tried on every value, CRC-64) into a sink that drops
// the bytes; an op is a key (the warm-up is one whole write).
// set-batch [ops] [rounds] [value bytes=1024] [modes=off,on] (issue 14, h146: the 1 KB -P16 SET row's store work):
// 100,000 keys of redis-benchmark's value, then batches of 16 SETs of random keys as the server runs a pipelined
// request (views over one receive buffer whose bytes are their AOF encoding, one command at a time through
// ExecuteBatch, an AOF sink, the replies), with KvStore.PrefetchKeys before each batch or not; every round runs every
// mode in turn (off, on = up to 1 KB of the value prefetched, on0 = none, on256, onall = the whole value, noaof = off without the AOF
// sink: what the AOF record costs the store), CPU us per SET.
// snapshot [keys=100000] [rounds=9] [modes=old,notouch,new] [scatter=4] (issue 14, h208: the AOF rewrite's snapshot on the store's
// thread, ~300 ns a key in the server against 47 in h202's isolated pass): keys of redis-benchmark's 1 KB value set in
// random order and overwritten 6x over (as -r keys after the row's warm-up); then `scatter` rounds of a leased snapshot
// during which `keys` random SETs run (the copy-on-write moves the rows they hit to recycled or new arrays, as the
// writes during a server's rewrites do: a value's array no longer sits next to its row's KvKeyedValue) and its Dispose;
// a compacting collection; then per round and mode a 64 MB read (cold caches) and one leased snapshot
// and its Dispose; the thread's CPU ns per key, medians. new = KvStore.CreateSnapshotLease (the pass by row,
// KvDatabase.SnapshotInto, h208); old = a copy of the pass before h208 (through the database's reused handle, with a
// type check of every value: an owned string's array header read) into a lease taken the same way; notouch = that copy
// without the type check of a marked (owned) string's value; fresh = new with the last snapshot's entries array dropped
// first (a new 3.2 MB array, as in a server whose key count moved since its last rewrite before §207); moved = new after
// one more key (the count moved by one since the last lease: h197's same-length spare was not reused, §207's is).
// cow [keys=100000] [rounds=9] (issue 14, §207: the copy-on-write arrays' waiting and release on the store's thread): keys
// of the 1 KB value, owned (each SET twice); per round a leased snapshot, then `keys` random SETs with the snapshot's
// writer passing its entries at the same pace (MarkWritten every 64 SETs, as the AOF rewrite's writer does by chunk),
// then its Dispose; the thread's CPU ns per SET and the copy-on-write arrays allocated, medians. A fourth argument
// `inplace` runs the same SETs with no snapshot (every SET in place): the copy-on-write's extra per SET (h216, §213).
// lzf-bound [calls] [rounds] [modes=avx2,v128,scalar] (issue 14, h150): LZF's give-up bound (RdbBlobs.LzfRepeatedTrigrams)
// over 16 values of 1,024 bytes made as redis-benchmark -d 1024 makes its value (different seeds), each mode in turn
// every round: avx2 = AVX2 hashing, v128 = 128-bit hashing with scalar bit setting, scalar; CPU ns per value, medians.
// (h150's AVX-512 population count and its avx2w mode were taken out by the lead in session 24: rationale §147.)
// longjmp-stress [seconds=60] [script threads=4] [gc threads=2] [errors|errors:I,J..|ok] (session 25, h155: the CI's rare Kv.Tests host crash,
// suspect 1): script threads, each with its own KvStore and script host, run EVALs whose C# callbacks raise Lua errors
// (lua_error longjmps over managed frames: redis.call errors, bit/cjson/cmsgpack/struct argument errors, nonexistent
// globals, readonly tables, pcall loops) and loops the count hook kills (SCRIPT KILL through the busy monitor), while GC
// threads force blocking compacting collections and one thread churns allocations. A line every 10 s and a summary;
// exit 0: no wrong reply, no exception; 3: a wrong reply; 4: a script thread stuck 30 s after the end; a crash ends the process (run it under DOTNET_DbgEnableMiniDump=1 etc.).
// errors:I,J runs only those scripts (indexes printed at the start); "ok" is the control: the same callbacks and hooked loops, nothing raising. Try DOTNET_gcServer=0|1 and DOTNET_TieredCompilation=0. bench/longjmp-stress.sh runs it several times and counts crashes.
string workload = args.Length > 0 ? args[0] : "evalsha";
int ops = args.Length > 1 ? int.Parse(args[1]) : 200_000;
int rounds = args.Length > 2 ? int.Parse(args[2]) : 5;
if (workload == "rdb-write") return RdbWriteBench.Run(ops, rounds);
if (workload == "crc") return CrcBench.Run(ops, rounds);
if (workload == "lzf-bound") return LzfBoundBench.Run(ops, rounds, args.Length > 3 ? args[3] : "avx2,v128,scalar");
if (workload == "longjmp-stress") return LongjmpStress.Run(args);
if (workload == "snapshot") return SnapshotBench.Run(ops, rounds, args.Length > 3 ? args[3] : "old,notouch,new", args.Length > 4 ? int.Parse(args[4]) : 4);
if (workload == "cow") return SnapshotBench.RunCopyOnWrite(ops, rounds, args.Length > 3 ? args[3] : "lease");
if (workload == "set-batch") return SetBatchBench.Run(ops, rounds, args.Length > 3 ? int.Parse(args[3]) : 1024, args.Length > 4 ? args[4] : "off,on");

var store = new KvStore(random: new Random(1));
var buffer = new ArrayBufferWriter<byte>(4096);
var writer = new RespWriter(buffer, 2);
long now = 1_700_000_000_000;

string Run(params string[] a)
{
    buffer.ResetWrittenCount();
    store.Execute(KvCommand.Create(a), now, writer, null);
    return Encoding.UTF8.GetString(buffer.WrittenSpan);
}

const string Script = "local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')";
const string TablesScript = "local t = {} for i = 1, #ARGV do t[i] = ARGV[i] .. ':' .. i end local s = {} for i = 1, #t do s[#s + 1] = #t[i] end return #s";
string sha = "";
string tablesSha = "";
KvCommand[] commands;
int perOp;
switch (workload)
{
    case "evalsha":
    case "evalsha-aof":
        sha = Run("SCRIPT", "LOAD", Script)[^42..^2];
        commands = Enumerable.Range(0, 4096).Select(i => KvCommand.Create("EVALSHA", sha, "1", "key:" + (i * 7919 % 100_000))).ToArray();
        perOp = 1;
        break;
    case "lua-tables":
        tablesSha = Run("SCRIPT", "LOAD", TablesScript)[^42..^2];
        commands = [KvCommand.Create(["EVALSHA", tablesSha, "0", .. Enumerable.Range(0, 20).Select(i => "argument-" + i)])];
        perOp = 1;
        break;
    case "stream":
        Run("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM");
        commands = [];
        perOp = 3;
        break;
    default:
        Console.Error.WriteLine("workload: evalsha | evalsha-aof | lua-tables | stream");
        return 2;
}

if (workload == "stream")
{
    // Every cycle's three commands made before the timed loops (the harness's own allocations stay out of the figures).
    int cycles = ops / 4 + ops * rounds;
    commands = new KvCommand[cycles * 3];
    KvCommand read = KvCommand.Create("XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "STREAMS", "s", ">");
    for (int c = 0; c < cycles; c++)
    {
        string id = (c + 1) + "-1";
        commands[3 * c] = KvCommand.Create("XADD", "s", id, "job", "payload-0123456789");
        commands[3 * c + 1] = read;
        commands[3 * c + 2] = KvCommand.Create("XACK", "s", "g", id);
    }
}

int next = 0;
var aofBuffer = new ArrayBufferWriter<byte>(1 << 20);
AofBufferSink? aof = workload == "evalsha-aof" ? new AofBufferSink(aofBuffer) : null;
int calls = 0;
void Execute(KvCommand command)
{
    buffer.ResetWrittenCount();
    if (aof is not null && (++calls & 1023) == 0) aofBuffer.ResetWrittenCount();
    store.Execute(command, now, writer, aof);
    if (buffer.WrittenSpan[0] == (byte)'-') throw new InvalidOperationException(Encoding.UTF8.GetString(buffer.WrittenSpan));
}

void Once(int i)
{
    if (workload == "stream")
    {
        Execute(commands[next++]);
        Execute(commands[next++]);
        Execute(commands[next++]);
        return;
    }
    Execute(commands[i % commands.Length]);
}

for (int i = 0; i < ops / 4; i++) Once(i);
var cpu = new List<double>();
var bytes = new List<double>();
Process self = Process.GetCurrentProcess();
for (int r = 0; r < rounds; r++)
{
    self.Refresh();
    TimeSpan t0 = self.TotalProcessorTime;
    long a0 = GC.GetAllocatedBytesForCurrentThread();
    for (int i = 0; i < ops; i++) Once(i);
    long a1 = GC.GetAllocatedBytesForCurrentThread();
    self.Refresh();
    TimeSpan t1 = self.TotalProcessorTime;
    cpu.Add((t1 - t0).TotalMicroseconds / ops);
    bytes.Add((double)(a1 - a0) / ops);
    Console.WriteLine($"round {r + 1}: cpu_us_per_op={cpu[^1]:F3} bytes_per_op={bytes[^1]:F1}");
}
static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
Console.WriteLine($"{workload} ops={ops} (x{perOp} commands) median cpu_us_per_op={Median(cpu):F3} bytes_per_op={Median(bytes):F1}");
return 0;

// crc [mb=256] [rounds=7] (issue 14, h226, §223): the thread CPU per MiB of KvDump's CRC-64 over a 1 MiB buffer (in the
// core's L2), by the 128-bit PCLMULQDQ fold and by the 512-bit VPCLMULQDQ fold, alternated within each round.
static class CrcBench
{
    public static int Run(int mb, int rounds)
    {
        byte[] data = new byte[1 << 20];
        new Random(223).NextBytes(data);
        var modes = new List<(string Name, Func<ReadOnlySpan<byte>, ulong, ulong> F)> { ("v128", KvDump.Crc64Folded) };
        if (System.Runtime.Intrinsics.X86.Pclmulqdq.V512.IsSupported) modes.Add(("v512", KvDump.Crc64FoldedWide));
        var results = modes.ToDictionary(m => m.Name, _ => new List<double>());
        ulong check = 0;
        foreach (var m in modes) check ^= m.F(data, 0) ^ KvDump.Crc64Sliced(data, 0); // 0 when they agree; also warms up
        for (int r = 0; r < rounds + 1; r++)
        {
            foreach (var m in modes)
            {
                long t0 = SnapshotBench.ThreadCpuNs();
                ulong crc = 0;
                for (int i = 0; i < mb; i++) crc = m.F(data, crc);
                long t1 = SnapshotBench.ThreadCpuNs();
                if (r > 0) results[m.Name].Add((t1 - t0) / 1e3 / mb);
                check += crc & 1;
            }
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        Console.WriteLine($"crc mb={mb} " + string.Join(" ", results.Select(kv => $"{kv.Key}: median {Median(kv.Value):F1} us/MiB ({string.Join(" ", kv.Value.Select(x => x.ToString("F1")))})")) + $" check={check}");
        return 0;
    }
}

static class SnapshotBench
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    private struct Timespec
    {
        public long Sec, Nsec;
    }

    internal static long ThreadCpuNs()
    {
        ClockGetTime(3, out Timespec ts); // CLOCK_THREAD_CPUTIME_ID: preemption on the shared machine not counted
        return ts.Sec * 1_000_000_000 + ts.Nsec;
    }

    public static int Run(int keys, int rounds, string modes, int scatter)
    {
        var store = new KvStore(random: new Random(1));
        var buffer = new ArrayBufferWriter<byte>(4096);
        var writer = new RespWriter(buffer, 2);
        long now = 1_700_000_000_000;
        byte[] value = RdbWriteBench.BenchmarkValue(1024);
        var random = new Random(7);
        byte[] set = "SET"u8.ToArray();
        byte[][] names = new byte[keys][];
        for (int k = 0; k < keys; k++) names[k] = Encoding.ASCII.GetBytes("key:" + k.ToString("D12", System.Globalization.CultureInfo.InvariantCulture));
        void Set(int k)
        {
            buffer.ResetWrittenCount();
            store.Execute(KvCommand.Create(set, names[k], value), now, writer, null);
        }
        for (int i = 0; i < keys * 6; i++) Set(random.Next(keys));
        for (int s = 0; s < scatter; s++)
        {
            KvSnapshotLease lease = store.CreateSnapshotLease(now);
            for (int i = 0; i < keys; i++) Set(random.Next(keys));
            lease.Dispose();
        }
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        string[] ms = modes.Split(',');
        byte[] evict = new byte[64 << 20];
        Random.Shared.NextBytes(evict);
        var results = ms.ToDictionary(m => m, _ => new List<double>());
        int count = 0;
        for (int r = -1; r < rounds; r++) // round -1: warm-up
        {
            foreach (string m in ms)
            {
                if (m == "fresh") store.SnapshotEpochs.DropSpareEntries(); // a new entries array, as when the key count moved
                if (m == "moved") store.SetValue(Encoding.ASCII.GetBytes($"moved:{r}"), "v"u8); // one key more than the last lease
                Evict();
                long t0 = ThreadCpuNs();
                KvSnapshotLease lease = m is "new" or "fresh" or "moved" ? store.CreateSnapshotLease(now) : OldLease(store, now, touch: m == "old");
                long t1 = ThreadCpuNs();
                count = lease.Entries.Count;
                lease.Dispose();
                if (r < 0) continue;
                double ns = (double)(t1 - t0) / count;
                results[m].Add(ns);
                Console.WriteLine($"round {r + 1} {m}: {ns:F1} ns/key (thread CPU)");
            }
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        // Between leases, 64 MB read (a server's SETs between two rewrites go through ~100 MB of values and their rows).
        void Evict()
        {
            long sum = 0;
            for (int i = 0; i < evict.Length; i += 64) sum += evict[i];
            GC.KeepAlive(sum);
        }
        Console.WriteLine($"snapshot keys={count} scatter={scatter} " + string.Join(" ", ms.Select(m => $"{m}: median {Median(results[m]):F1} ns/key")));
        return 0;
    }

    public static int RunCopyOnWrite(int keys, int rounds, string mode = "lease")
    {
        bool leased = mode != "inplace"; // inplace: the same SETs with no snapshot running (every one in place, h216 §213)
        var store = new KvStore(random: new Random(1));
        var buffer = new ArrayBufferWriter<byte>(4096);
        var writer = new RespWriter(buffer, 2);
        long now = 1_700_000_000_000;
        byte[] value = RdbWriteBench.BenchmarkValue(1024);
        byte[] set = "SET"u8.ToArray();
        byte[][] names = new byte[keys][];
        for (int k = 0; k < keys; k++) names[k] = Encoding.ASCII.GetBytes("key:" + k.ToString("D12", System.Globalization.CultureInfo.InvariantCulture));
        KvCommand[] commands = names.Select(n => KvCommand.Create(set, n, value)).ToArray();
        void Set(int k)
        {
            buffer.ResetWrittenCount();
            store.Execute(commands[k], now, writer, null);
        }
        for (int k = 0; k < keys; k++) Set(k);
        for (int k = 0; k < keys; k++) Set(k); // owned: overwritten in place from now on
        var random = new Random(7);
        int[] order = new int[keys];
        var cpu = new List<double>();
        for (int r = -2; r < rounds; r++) // two warm-up rounds
        {
            for (int i = 0; i < keys; i++) order[i] = random.Next(keys);
            long allocated = store.CopyOnWriteArrays.Allocated;
            long t0 = ThreadCpuNs();
            KvSnapshotLease? lease = leased ? store.CreateSnapshotLease(now) : null;
            long t1 = ThreadCpuNs();
            int total = lease?.Entries.Count ?? 0;
            for (int i = 0; i < keys; i++)
            {
                Set(order[i]);
                if ((i & 63) == 63) lease?.MarkWritten((int)((long)total * (i + 1) / keys));
            }
            lease?.Dispose();
            Set(order[0]); // the release after the end
            long t2 = ThreadCpuNs();
            if (r < 0) continue;
            double ns = (double)(t2 - t1) / keys;
            cpu.Add(ns);
            Console.WriteLine($"round {r + 1}: {ns:F1} ns/SET (thread CPU), snapshot {(t1 - t0) / 1e6:F1} ms, cow arrays allocated {store.CopyOnWriteArrays.Allocated - allocated}, recycled total {store.CopyOnWriteArrays.Recycled}");
        }
        Console.WriteLine($"cow {mode} keys={keys} median {cpu.Order().ElementAt(cpu.Count / 2):F1} ns/SET");
        return 0;
    }

    // KvStore.CreateSnapshotLease as it was before h208 (database 0 only: the bench's keys are there), through the
    // database's reused handle; touch: false leaves out the type check of a marked value (an owned string's array).
    private static KvSnapshotLease OldLease(KvStore store, long now, bool touch)
    {
        KvSnapshotEpochs epochs = store.SnapshotEpochs;
        KvSnapshotLease lease = epochs.Begin();
        KvDatabase db = store.Database(0);
        KvSnapshotEntry[] entries = epochs.RentEntries(store.Count);
        KvKeyedValue?[]? rows = null;
        int n = 0;
        for (int i = 0; i < db.SlotCount; i++)
        {
            if (!db.HasRow(i) || !KvStore.IsLiveRow(db, i, now)) continue;
            KvEntry e = db.ReusedHandle(i);
            object value = e.SnapshotValue(lease.Id, n, out KvKeyedValue? marked);
            if (marked is not null) (rows ??= epochs.RentRows(entries.Length))[n] = marked;
            if ((touch || marked is null) && value is KvObject o) value = o.Clone();
            entries[n++] = new KvSnapshotEntry(db.Index, e.Key, value, e.ExpireAt);
        }
        lease.Entries = new ArraySegment<KvSnapshotEntry>(entries, 0, n);
        lease.PooledEntries = true;
        lease.Rows = rows;
        return lease;
    }
}

static class RdbWriteBench
{
    // redis-benchmark's value for -d N (genBenchmarkRandomData): '0' + 6 bits of a linear congruential generator per byte.
    internal static byte[] BenchmarkValue(int size, uint seed = 1234)
    {
        byte[] data = new byte[size];
        uint state = seed;
        for (int i = 0; i < size; i++)
        {
            state = state * 1103515245 + 12345;
            data[i] = (byte)('0' + ((state >> 16) & 63));
        }
        return data;
    }

    public static int Run(int keys, int rounds)
    {
        var store = new KvStore(random: new Random(1));
        var buffer = new ArrayBufferWriter<byte>(4096);
        var writer = new RespWriter(buffer, 2);
        long now = 1_700_000_000_000;
        byte[] value = BenchmarkValue(1024);
        for (int i = 0; i < keys; i++)
        {
            buffer.ResetWrittenCount();
            store.Execute(KvCommand.Create("SET"u8.ToArray(), Encoding.ASCII.GetBytes("key:" + i.ToString("D12", System.Globalization.CultureInfo.InvariantCulture)), value), now, writer, null);
        }
        KvSnapshotEntry[] snapshot = store.CreateSnapshot(now);
        long sunk = 0;
        void Sink(ReadOnlySpan<byte> data) => sunk += data.Length;
        Process self = Process.GetCurrentProcess();
        TimeSpan first0 = self.TotalProcessorTime;
        KvRdb.Write(snapshot, Sink, "7.0.15", now, 0); // warm-up: tier-1 code for the loops
        self.Refresh();
        // The first write's CPU (h150): the process's first call of each method is jitted, tiered methods start at tier 0
        // (a server's first AOF rewrite); the JIT's own thread counts too.
        Console.WriteLine($"first write: cpu_us_per_op={(self.TotalProcessorTime - first0).TotalMicroseconds / keys:F3}");
        var cpu = new List<double>();
        var bytes = new List<double>();
        long fileBytes = 0;
        for (int r = 0; r < rounds; r++)
        {
            self.Refresh();
            TimeSpan t0 = self.TotalProcessorTime;
            long a0 = GC.GetAllocatedBytesForCurrentThread();
            fileBytes = KvRdb.Write(snapshot, Sink, "7.0.15", now, 0);
            long a1 = GC.GetAllocatedBytesForCurrentThread();
            self.Refresh();
            TimeSpan t1 = self.TotalProcessorTime;
            cpu.Add((t1 - t0).TotalMicroseconds / keys);
            bytes.Add((double)(a1 - a0) / keys);
            Console.WriteLine($"round {r + 1}: cpu_us_per_op={cpu[^1]:F3} bytes_per_op={bytes[^1]:F1}");
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        Console.WriteLine($"rdb-write keys={keys} file={fileBytes} bytes median cpu_us_per_op={Median(cpu):F3} bytes_per_op={Median(bytes):F1} (first write above)");
        return 0;
    }
}

static class SetBatchBench
{
    public static int Run(int ops, int rounds, int valueSize, string modeList)
    {
        const int Keys = 100_000, Batch = 16;
        var store = new KvStore(random: new Random(1));
        var replies = new ArrayBufferWriter<byte>(4096);
        var writer = new RespWriter(replies, 2);
        long now = 1_700_000_000_000;
        byte[] value = new byte[valueSize];
        uint state = 1234;
        for (int i = 0; i < valueSize; i++)
        {
            state = state * 1103515245 + 12345;
            value[i] = (byte)('0' + ((state >> 16) & 63));
        }
        for (int i = 0; i < Keys; i++)
        {
            replies.ResetWrittenCount();
            store.Execute(KvCommand.Create("SET"u8.ToArray(), Encoding.ASCII.GetBytes("key:" + i.ToString("D12", System.Globalization.CultureInfo.InvariantCulture)), value), now, writer, null);
        }

        // One receive buffer holding 16 SETs (*3 $3 SET $16 key:NNNNNNNNNNNN $len value), and views over it.
        byte[] one = Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n${valueSize}\r\n");
        int commandBytes = one.Length + valueSize + 2;
        byte[] receive = new byte[commandBytes * Batch];
        int[] positions = new int[Batch * 6];
        var views = new KvCommand[Batch];
        int keyDigits = one.Length - $"\r\n${valueSize}\r\n".Length - 12;
        for (int b = 0; b < Batch; b++)
        {
            int at = b * commandBytes;
            one.CopyTo(receive, at);
            value.CopyTo(receive, at + one.Length);
            receive[at + commandBytes - 2] = (byte)'\r';
            receive[at + commandBytes - 1] = (byte)'\n';
            positions[6 * b] = at + 8; positions[6 * b + 1] = 3;
            positions[6 * b + 2] = at + keyDigits - 4; positions[6 * b + 3] = 16;
            positions[6 * b + 4] = at + one.Length; positions[6 * b + 5] = valueSize;
            views[b] = new KvCommand(receive, positions, 6 * b, 3, at, commandBytes);
        }
        var session = new KvSession();
        var aofBuffer = new ArrayBufferWriter<byte>(1 << 16);
        var aof = new AofBufferSink(aofBuffer);
        ulong rng = 88172645463325252UL;
        IAofSink? sink = aof;

        void RunBatches(int sets)
        {
            for (int done = 0; done < sets; done += Batch)
            {
                for (int b = 0; b < Batch; b++)
                {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                    int key = (int)(rng % Keys);
                    Span<byte> digits = receive.AsSpan(b * commandBytes + keyDigits, 12);
                    for (int d = 11; d >= 0; d--, key /= 10) digits[d] = (byte)('0' + key % 10);
                }
                replies.ResetWrittenCount();
                aofBuffer.ResetWrittenCount();
                store.PrefetchKeys(session, views);
                for (int b = 0; b < Batch; b++) store.ExecuteBatch(session, views.AsSpan(b, 1), now, writer, sink);
                if (replies.WrittenCount != 5 * Batch) throw new InvalidOperationException(Encoding.UTF8.GetString(replies.WrittenSpan));
            }
        }

        string[] modes = modeList.Split(',');
        void SetMode(string mode)
        {
            KvStore.PrefetchEnabled = mode is not "off" and not "noaof";
            sink = mode == "noaof" ? null : aof;
            KvDatabase.PrefetchValueBytes = mode switch { "on0" => 0, "on256" => 256, "onall" => valueSize, _ => 1024 };
        }
        foreach (string mode in modes)
        {
            SetMode(mode);
            RunBatches(ops / 4); // warm-up: tier-1 code of each mode's path
        }
        var cpu = modes.ToDictionary(m => m, _ => new List<double>());
        for (int r = 0; r < rounds; r++)
        {
            foreach (string mode in modes)
            {
                SetMode(mode);
                TimeSpan t0 = Process.GetCurrentProcess().TotalProcessorTime;
                RunBatches(ops);
                TimeSpan t1 = Process.GetCurrentProcess().TotalProcessorTime;
                cpu[mode].Add((t1 - t0).TotalMicroseconds / ops);
            }
            Console.WriteLine($"round {r + 1}: " + string.Join(" ", modes.Select(m => $"{m}={cpu[m][^1]:F3}")) + $" (load {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
        }
        static double Median(List<double> v) { var s = v.Order().ToList(); return s[s.Count / 2]; }
        Console.WriteLine($"set-batch ops={ops} value={valueSize} B median cpu_us_per_set: " + string.Join(" ", modes.Select(m => $"{m}={Median(cpu[m]):F3}")));
        return 0;
    }
}

static class LzfBoundBench
{
    public static int Run(int calls, int rounds, string modeList)
    {
        byte[][] values = Enumerable.Range(0, 16).Select(i => RdbWriteBench.BenchmarkValue(1024, 1234 + (uint)i)).ToArray();
        var state = new RdbBlobs.LzfState();
        string[] modes = modeList.Split(',');
        RdbBlobs.LzfScan Mode(string m) => m switch
        {
            "avx2" => RdbBlobs.LzfScan.Avx2,
            "v128" => RdbBlobs.LzfScan.Vector128,
            "scalar" => RdbBlobs.LzfScan.Scalar,
            _ => throw new ArgumentException(m),
        };
        long sink = 0;
        void Loop(string m, int n)
        {
            var scan = Mode(m);
            for (int i = 0; i < n; i++) sink += RdbBlobs.LzfRepeatedTrigrams(values[i & 15], 33, state, scan);
        }
        foreach (string m in modes) Loop(m, calls); // warm-up
        var ns = modes.ToDictionary(m => m, _ => new List<double>());
        Process self = Process.GetCurrentProcess();
        for (int r = 0; r < rounds; r++)
        {
            foreach (string m in modes)
            {
                self.Refresh();
                TimeSpan t0 = self.TotalProcessorTime;
                Loop(m, calls);
                self.Refresh();
                ns[m].Add((self.TotalProcessorTime - t0).TotalNanoseconds / calls);
            }
        }
        foreach (string m in modes)
        {
            var v = ns[m].Order().ToList();
            Console.WriteLine($"lzf-bound {m}: median {v[v.Count / 2]:F0} ns a 1 KB value (rounds: {string.Join(" ", ns[m].Select(x => x.ToString("F0")))})");
        }
        return sink == 42 ? 1 : 0;
    }
}

/// <summary>longjmp-stress (issue N, h155): the CI's rare Kv.Tests host crash, suspect 1 (rationale §147): Lua errors
/// raised by C# callbacks (<c>lua_error</c> longjmps over their managed frames) and by the managed count hook (SCRIPT
/// KILL of <c>while true do end</c>), on several threads at once, each with its own store and script host as the unit
/// tests make them, while other threads allocate and force blocking compacting gen-2 collections. Prints a line every
/// 10 s and a summary; exit 0 = no crash, no wrong reply, no exception (a crash ends the process: the caller counts it).</summary>
static class LongjmpStress
{
    // Each script raises at least once through a C# function (or the count hook); the reply must be an error.
    private static readonly string[] ErrorScripts =
    [
        "return redis.call('nosuchcommand')",                      // redis.call raising a command error
        "return redis.call('GET')",                                // wrong arity
        "return redis.call('INCR', KEYS[1] .. ':s')",              // INCR on a string (set below): WRONGTYPE-like error
        "return bit.band('x')",                                    // luaL_checknumber from a C# callback
        "return cjson.decode('{')",                                // cjson error
        "return cjson.decode('[1,2,' .. string.rep('[', 2000))",   // deep/invalid JSON
        "return cmsgpack.unpack()",                                // msgpack argument error
        "return cmsgpack.pack()",                                  // "MessagePack pack needs input."
        "return struct.pack('y', 1)",                              // invalid format option
        "return struct.pack('i33', 1)",                            // integral size over 32 (Redis's limit)
        "return no_such_global_name",                              // __index of the globals (C#) raising
        "no_such_global_name = 1",                                 // __newindex: readonly table
        "rawset(_G, 'x', 1)",                                      // sandbox rawset raising
        "return redis.setresp(7)",                                 // RESP version error
        "return redis.log()",                                      // redis.log() requires two arguments
        "return string.rep('x', 300 * 1024 * 1024)",               // the memory cap (allocator returns NULL)
        "local n = 0 for i = 1, 200 do if not pcall(redis.call, 'nosuch') then n = n + 1 end " +
            "if not pcall(bit.bor, {}) then n = n + 1 end if not pcall(cjson.decode, '[') then n = n + 1 end end " +
            "return redis.error_reply('pcalled ' .. n)",           // many longjmps caught by pcall inside one script
        "local t = {} for i = 1, 100 do t[i] = string.rep('v', 1000) .. i end " +
            "redis.call('SET', KEYS[1], table.concat(t)) return redis.call('nosuch')", // managed allocation, then raise
    ];

    // The control (kind "ok"): the same C# callbacks and loops, none raising (a loop long enough for the count hook to run).
    private static readonly string[] OkScripts =
    [
        "return redis.call('SET', KEYS[1], 'v')",
        "return type(redis.pcall('nosuchcommand'))",               // redis.pcall returns the error table: no raise
        "return bit.band(7, 3)",
        "return cjson.encode(cjson.decode('[1,2,{\"a\":3}]'))",
        "return cmsgpack.unpack(cmsgpack.pack(1, 2, 3))",
        "return struct.pack('i', 1)",
        "return redis.sha1hex('x')",
        "local t = {} for i = 1, 100 do t[i] = string.rep('v', 1000) .. i end redis.call('SET', KEYS[1], table.concat(t)) return 1",
        "local n = 0 for i = 1, 300000 do n = n + 1 end return n",
    ];

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    private const string LoopScript = "while true do end";                                  // killed by the count hook
    private const string PcallLoopScript = "while true do pcall(redis.call, 'nosuch') end"; // killed; the kill raises again each line

    public static int Run(string[] args)
    {
        double seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 60;
        int scriptThreads = args.Length > 2 ? int.Parse(args[2]) : 4;
        int gcThreads = args.Length > 3 ? int.Parse(args[3]) : 2;
        string kind = args.Length > 4 ? args[4] : "errors";
        bool raising = kind != "ok";
        // errors:I,J,...: only those of the raising scripts (0-based indexes into ErrorScripts, then the two killed loops).
        string[] pool = [.. ErrorScripts, LoopScript, PcallLoopScript];
        if (raising) for (int i = 0; i < pool.Length; i++) Console.WriteLine($"script {i}: {pool[i]}");
        if (kind.StartsWith("errors:", StringComparison.Ordinal))
        {
            string[] all = pool;
            pool = [.. kind["errors:".Length..].Split(',').Select(i => all[int.Parse(i)])];
            Console.WriteLine("only scripts " + kind["errors:".Length..]);
        }
        Console.WriteLine($"longjmp-stress: {seconds} s, {scriptThreads} script threads ({(raising ? "raising errors" : "control: nothing raises")}), {gcThreads} GC threads + 1 allocation thread; " +
            $"server GC={System.Runtime.GCSettings.IsServerGC} concurrent={System.Runtime.GCSettings.LatencyMode} " +
            $"tiered={Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") ?? "default"} pid={Environment.ProcessId}");
        var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        long scripts = 0, errors = 0, kills = 0, wrong = 0, collections = 0, allocated = 0;
        int failuresPrinted = 0;
        void Fail(string what)
        {
            if (Interlocked.Increment(ref failuresPrinted) <= 20) Console.WriteLine("FAILURE " + what);
        }
        var running = new string?[scriptThreads]; // each script thread's script while it runs (null between scripts)
        var threads = new List<Thread>();
        for (int t = 0; t < scriptThreads; t++)
        {
            int id = t;
            threads.Add(new Thread(() =>
            {
                Console.WriteLine($"script-{id} tid={GetTid()}");
                try
                {
                    var store = new KvStore(random: new Random(id));
                    var buffer = new ArrayBufferWriter<byte>(4096);
                    var writer = new RespWriter(buffer, 2);
                    KvScriptMonitor monitor = store.ScriptMonitor;
                    monitor.BusyReplyThresholdMs = 0; // every count-hook call runs WhileBusy
                    bool kill = false;
                    var killReply = new RespWriter(new ArrayBufferWriter<byte>(), 2);
                    KvCommand scriptKill = KvCommand.Create("SCRIPT", "KILL");
                    monitor.WhileBusy = () =>
                    {
                        if (kill) monitor.AnswerWhileBusy(scriptKill, killReply);
                    };
                    string key = "k" + id;
                    long now = 1_700_000_000_000;
                    string Exec(params string[] a)
                    {
                        buffer.ResetWrittenCount();
                        store.Execute(KvCommand.Create(a), now, writer, null);
                        return Encoding.UTF8.GetString(buffer.WrittenSpan);
                    }
                    Exec("SET", key + ":s", "text");
                    var rng = new Random(id);
                    while (!stop.IsCancellationRequested)
                    {
                        string script;
                        if (raising)
                        {
                            script = pool[rng.Next(pool.Length)];
                            kill = script is LoopScript or PcallLoopScript;
                        }
                        else
                        {
                            script = OkScripts[rng.Next(OkScripts.Length)];
                        }
                        // EVAL (compiled each time after the first through the script cache) and, now and then, a new body.
                        string body = rng.Next(8) == 0 ? script + " -- " + rng.Next(1000) : script;
                        Volatile.Write(ref running[id], body);
                        string reply = Exec("EVAL", body, "1", key);
                        Volatile.Write(ref running[id], null);
                        Interlocked.Increment(ref scripts);
                        if (!raising)
                        {
                            if (reply.StartsWith('-')) { Interlocked.Increment(ref wrong); Fail($"thread {id}: {script} -> {reply[..Math.Min(reply.Length, 200)]}"); }
                        }
                        else if (!reply.StartsWith('-'))
                        {
                            Interlocked.Increment(ref wrong);
                            Fail($"thread {id}: {script} -> {reply[..Math.Min(reply.Length, 200)]}");
                        }
                        else if (kill)
                        {
                            if (reply.StartsWith("-ERR Script killed", StringComparison.Ordinal)) Interlocked.Increment(ref kills);
                            else { Interlocked.Increment(ref wrong); Fail($"thread {id}: {script} -> {reply[..Math.Min(reply.Length, 200)]}"); }
                        }
                        else Interlocked.Increment(ref errors);
                        if (rng.Next(64) == 0) Exec("SCRIPT", "FLUSH"); // closes and rebuilds the Lua state
                    }
                }
                catch (Exception e)
                {
                    Fail($"thread {id}: {e}");
                    Interlocked.Increment(ref wrong);
                }
            }) { Name = "script-" + t, IsBackground = true });
        }
        for (int t = 0; t < gcThreads; t++)
        {
            int id = t;
            threads.Add(new Thread(() =>
            {
                Console.WriteLine($"gc-{id} tid={GetTid()}");
                var keep = new object[1024];
                var rng = new Random(100 + id);
                while (!stop.IsCancellationRequested)
                {
                    for (int i = 0; i < 256; i++) keep[rng.Next(keep.Length)] = new byte[rng.Next(16, 4096)];
                    if (id % 2 == 0) GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    else GC.Collect(rng.Next(3), GCCollectionMode.Forced, blocking: rng.Next(2) == 0);
                    Interlocked.Increment(ref collections);
                }
            }) { Name = "gc-" + t, IsBackground = true });
        }
        threads.Add(new Thread(() =>
        {
            // Allocation churn: short- and long-lived objects, some on the large-object heap.
            Console.WriteLine($"alloc tid={GetTid()}");
            var live = new List<object>();
            var rng = new Random(7);
            while (!stop.IsCancellationRequested)
            {
                object o = rng.Next(100) == 0 ? new byte[rng.Next(85_000, 300_000)] : new string('x', rng.Next(1, 200)) + rng.Next();
                if (live.Count < 20_000) live.Add(o); else live[rng.Next(live.Count)] = o;
                Interlocked.Increment(ref allocated);
            }
        }) { Name = "alloc", IsBackground = true });
        foreach (Thread t in threads) t.Start();
        var clock = Stopwatch.StartNew();
        while (!stop.IsCancellationRequested)
        {
            stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(10));
            Console.WriteLine($"{clock.Elapsed.TotalSeconds:F0} s: scripts={Interlocked.Read(ref scripts)} errors={Interlocked.Read(ref errors)} kills={Interlocked.Read(ref kills)} " +
                $"wrong={Interlocked.Read(ref wrong)} forced_gcs={Interlocked.Read(ref collections)} gen2={GC.CollectionCount(2)} gen0={GC.CollectionCount(0)} " +
                $"load={File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        }
        // A thread still running 30 s after the end is stuck (a script never returning: e.g. a kill that did not end it).
        int stuck = 0;
        var joinBy = Stopwatch.StartNew();
        foreach (Thread t in threads)
        {
            if (!t.Join(TimeSpan.FromSeconds(Math.Max(0, 30 - joinBy.Elapsed.TotalSeconds))))
            {
                stuck++;
                int id = t.Name!.StartsWith("script-", StringComparison.Ordinal) ? int.Parse(t.Name["script-".Length..]) : -1;
                Console.WriteLine($"STUCK {t.Name}" + (id >= 0 ? $" in: {Volatile.Read(ref running[id])}" : ""));
            }
        }
        Console.WriteLine($"longjmp-stress done: {clock.Elapsed.TotalSeconds:F0} s scripts={scripts} errors={errors} kills={kills} wrong={wrong} forced_gcs={collections} " +
            $"gen2={GC.CollectionCount(2)} allocations={allocated}: {(stuck > 0 ? "STUCK THREADS" : wrong == 0 ? "no crash, no wrong reply" : "WRONG REPLIES")}");
        if (stuck > 0)
        {
            Console.WriteLine($"longjmp-stress: {stuck} threads stuck");
            Console.Out.Flush();
            Environment.Exit(4); // now, whatever the stuck threads do
        }
        return wrong == 0 ? 0 : 3;
    }
}
