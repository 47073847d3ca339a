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
// lzf-bound [calls] [rounds] [modes=avx2,v128,scalar] (issue 14, h150): LZF's give-up bound (RdbBlobs.LzfRepeatedTrigrams)
// over 16 values of 1,024 bytes made as redis-benchmark -d 1024 makes its value (different seeds), each mode in turn
// every round: avx2 = AVX2 hashing, v128 = 128-bit hashing with scalar bit setting, scalar; CPU ns per value, medians.
// (h150's AVX-512 population count and its avx2w mode were taken out by the lead in session 24: rationale §147.)
string workload = args.Length > 0 ? args[0] : "evalsha";
int ops = args.Length > 1 ? int.Parse(args[1]) : 200_000;
int rounds = args.Length > 2 ? int.Parse(args[2]) : 5;
if (workload == "rdb-write") return RdbWriteBench.Run(ops, rounds);
if (workload == "lzf-bound") return LzfBoundBench.Run(ops, rounds, args.Length > 3 ? args[3] : "avx2,v128,scalar");
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
