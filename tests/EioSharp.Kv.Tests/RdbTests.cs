using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class RdbTests
{
    private const long Now = 1_700_000_000_000;

    /// <summary>A seeded random dataset over every type, four databases, small values (listpack-sized) and large ones
    /// (over the listpack thresholds: long lists, big hashes and sets, long strings), integer strings, expiries, streams
    /// with deleted entries, consumer groups, consumers and pending entries.</summary>
    internal static void Fill(StoreHarness h, int seed, int keysPerDb = 40)
    {
        var r = new Random(seed);
        string V() => r.Next(6) switch
        {
            0 => r.Next(-200000, 200000).ToString(CultureInfo.InvariantCulture),
            1 => new string('x', r.Next(60, 5000)),
            2 => "",
            3 => long.MaxValue.ToString(CultureInfo.InvariantCulture),
            _ => "v" + r.Next(1000),
        };
        for (int db = 0; db < 4; db++)
        {
            h.Run("SELECT", db.ToString(CultureInfo.InvariantCulture));
            for (int i = 0; i < keysPerDb; i++)
            {
                string key = $"k{db}:{i}";
                bool large = r.Next(4) == 0;
                int n = large ? r.Next(130, 700) : r.Next(1, 20);
                switch (r.Next(6))
                {
                    case 0:
                        h.Run("SET", key, V());
                        break;
                    case 1:
                        for (int j = 0; j < n; j++) h.Run("RPUSH", key, V());
                        break;
                    case 2:
                        bool ints = r.Next(2) == 0;
                        for (int j = 0; j < n; j++) h.Run("SADD", key, ints ? r.Next(-100000, 100000).ToString(CultureInfo.InvariantCulture) : V() + j);
                        break;
                    case 3:
                        for (int j = 0; j < n; j++)
                        {
                            string score = r.Next(10) switch
                            {
                                0 => "inf",
                                1 => "-inf",
                                2 => "0",
                                _ => (r.NextDouble() * 2000 - 1000).ToString("R", CultureInfo.InvariantCulture),
                            };
                            h.Run("ZADD", key, score, "m" + j + V());
                        }
                        break;
                    case 4:
                        for (int j = 0; j < n; j++) h.Run("HSET", key, "f" + j, V());
                        break;
                    default:
                        int entries = large ? r.Next(150, 300) : r.Next(1, 12);
                        for (int j = 0; j < entries; j++)
                        {
                            if (r.Next(3) == 0) h.Run("XADD", key, "*", "a", V(), "b", V());
                            else h.Run("XADD", key, "*", "f" + r.Next(3), V());
                            h.Now += r.Next(0, 3);
                        }
                        if (r.Next(2) == 0) h.Run("XDEL", key, "0-1");
                        string first = h.Run("XRANGE", key, "-", "+", "COUNT", "1");
                        if (r.Next(2) == 0 && first.Contains("-", StringComparison.Ordinal))
                        {
                            string id = first.Split("\r\n")[3];
                            h.Run("XDEL", key, id);
                        }
                        if (r.Next(3) > 0)
                        {
                            h.Run("XGROUP", "CREATE", key, "g1", "0");
                            h.Run("XREADGROUP", "GROUP", "g1", "alice", "COUNT", r.Next(1, 6).ToString(CultureInfo.InvariantCulture), "STREAMS", key, ">");
                            h.Run("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", key, ">");
                            h.Run("XGROUP", "CREATECONSUMER", key, "g1", "carol");
                            h.Run("XGROUP", "CREATE", key, "g2", "$");
                        }
                        break;
                }
                if (r.Next(4) == 0) h.Run("PEXPIREAT", key, (Now + 1000 + r.Next(1_000_000)).ToString(CultureInfo.InvariantCulture));
            }
        }
        h.Run("SELECT", "0");
    }

    /// <summary>Every key with its type, expiry and contents, as replies (sets and hashes sorted).</summary>
    internal static List<string> Canonical(StoreHarness h)
    {
        var lines = new List<string>();
        for (int db = 0; db < 16; db++)
        {
            h.Run("SELECT", db.ToString(CultureInfo.InvariantCulture));
            var keys = Items(h.Run("KEYS", "*")).Order(StringComparer.Ordinal).ToList();
            foreach (string key in keys)
            {
                string type = h.Run("TYPE", key);
                lines.Add($"{db} {key} {type.Trim()} ttl={h.Run("PEXPIRETIME", key).Trim()}");
                switch (type.Trim())
                {
                    case "+string": lines.Add(h.Run("GET", key)); break;
                    case "+list": lines.Add(h.Run("LRANGE", key, "0", "-1")); break;
                    case "+set": lines.Add(string.Join(",", Items(h.Run("SMEMBERS", key)).Order(StringComparer.Ordinal))); break;
                    case "+zset": lines.Add(h.Run("ZRANGE", key, "0", "-1", "WITHSCORES")); break;
                    case "+hash": lines.Add(string.Join(",", Items(h.Run("HGETALL", key)).Chunk(2).Select(p => p[0] + "=" + p[1]).Order(StringComparer.Ordinal))); break;
                    case "+stream":
                        lines.Add(h.Run("XRANGE", key, "-", "+"));
                        lines.Add(h.Run("XINFO", "GROUPS", key));
                        foreach (string g in new[] { "g1", "g2" })
                        {
                            lines.Add(h.Run("XPENDING", key, g, "-", "+", "1000"));
                            lines.Add(h.Run("XINFO", "CONSUMERS", key, g).Length.ToString(CultureInfo.InvariantCulture));
                        }
                        lines.Add(WithoutRadixTree(h.Run("XINFO", "STREAM", key)));
                        break;
                }
            }
        }
        h.Run("SELECT", "0");
        return lines;
    }

    private static List<string> Items(string reply)
    {
        string[] parts = reply.Split("\r\n");
        var list = new List<string>();
        for (int i = 0; i < CountOf(reply); i++) list.Add(parts[2 + 2 * i]);
        return list;
    }

    // XINFO STREAM without the radix tree's shape (a loaded stream has no tombstones, so fewer nodes may hold it).
    private static string WithoutRadixTree(string reply)
    {
        string[] parts = reply.Split("\r\n");
        var kept = new List<string>();
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i] is "radix-tree-keys" or "radix-tree-nodes")
            {
                i += 1; // the value (an integer line)
                kept.RemoveAt(kept.Count - 1); // the name's $ header
                continue;
            }
            kept.Add(parts[i]);
        }
        return string.Join("|", kept[1..]);
    }

    private static int CountOf(string reply) => reply.StartsWith('*') ? int.Parse(reply.AsSpan(1, reply.IndexOf('\r') - 1), CultureInfo.InvariantCulture) : 0;

    private static byte[] Save(StoreHarness h)
    {
        var file = new ArrayBufferWriter<byte>();
        long written = KvRdb.Write(h.Store.CreateSnapshot(h.Now), span => file.Write(span), "7.0.15", h.Now, 1234);
        Assert.Equal(file.WrittenCount, written);
        return file.WrittenSpan.ToArray();
    }

    private static (StoreHarness Harness, KvRdbLoadResult Result) Load(byte[] file, long now = Now)
    {
        var h = new StoreHarness(new KvStore(random: new Random(2))) { Now = now };
        KvRdbLoadResult result = KvRdb.Load(new MemoryStream(file), file.Length, h.Store, now);
        return (h, result);
    }

    /// <summary>A whole file's writer hands its sink whole 4 KiB blocks from a block-aligned buffer (the AOF rewrite's
    /// direct writer writes them without copying, h208), the last partial block and the checksum at the end only; the
    /// file is byte for byte what a writer with a small buffer (DUMP's, every byte handed on) writes, and loads back.</summary>
    [Fact]
    public void A_file_writer_hands_whole_aligned_blocks_and_writes_the_same_bytes()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 5, keysPerDb: 400); // a few MB: several chunks
        KvSnapshotEntry[] snapshot = a.Store.CreateSnapshot(a.Now);
        var pieces = new List<int>();
        var aligned = new List<bool>();
        var file = new ArrayBufferWriter<byte>();
        long written = KvRdb.WriteWithSampling(snapshot, span =>
        {
            pieces.Add(span.Length);
            nint address = System.Runtime.CompilerServices.Unsafe.ByteOffset(
                ref System.Runtime.CompilerServices.Unsafe.NullRef<byte>(), ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span));
            aligned.Add((address & 4095) == 0);
            file.Write(span);
        }, "7.0.15", Now, 1234, default, aofBase: true, compression: true, checksum: true, lease: null, lzfSampling: false);
        Assert.Equal(file.WrittenCount, written);
        Assert.True(pieces.Count > 3, $"{pieces.Count} pieces");
        for (int i = 0; i < pieces.Count - 2; i++)
        {
            Assert.Equal(0, pieces[i] % 4096);
            Assert.True(aligned[i], $"piece {i} not aligned");
        }
        Assert.Equal(8, pieces[^1]); // the checksum

        var small = new ArrayBufferWriter<byte>();
        var writer = new RdbWriter(span => small.Write(span), compress: true, checksum: true, bufferBytes: 64 * 1024) { LzfSampling = false };
        writer.WriteAll(snapshot, "7.0.15", Now, 1234, aofBase: true);
        Assert.Equal(small.WrittenSpan.ToArray(), file.WrittenSpan.ToArray());

        // Loads with its checksum verified; keys the load leaves out (empty collections, expired keys) are counted.
        var (b, result) = Load(file.WrittenSpan.ToArray(), a.Now);
        Assert.Equal(snapshot.Length, result.KeysLoaded + result.ExpiredSkipped + result.EmptySkipped); // the snapshot leaves out keys expired but not removed yet
        Assert.Equal(result.KeysLoaded, b.Store.Count);
    }

    /// <summary>§223: a string key's entry header (expiry, type, key, the value's length) written as one piece gives the
    /// bytes the five pieces gave, for keys and values around every encoding's edge (integers, LZF's minimum, a
    /// compressible and an incompressible value, a proof, the adaptive compression's runs) and the store's other types.</summary>
    [Fact]
    public void A_string_entry_header_in_one_piece_writes_the_same_bytes_as_in_pieces()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 2);
        var entries = new List<KvSnapshotEntry>(a.Store.CreateSnapshot(a.Now));
        var r = new Random(223);
        string[] keys = ["", "1", "-5", "007", "12345678901", "123456789012", "key:000000012345", "k", "abcdefghijklmnopqrst", "abcdefghijklmnopqrstu", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"];
        for (int i = 0; i < 400; i++)
        {
            byte[] value = (i % 7) switch
            {
                0 => Encoding.ASCII.GetBytes((i * 7919 - 1000).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                1 => new byte[i % 30],
                2 => Encoding.ASCII.GetBytes(new string('x', 21 + i % 50)),
                3 => Encoding.ASCII.GetBytes("0" + i),
                _ => RandomBytes(r, 20 + i % 1100),
            };
            string key = keys[i % keys.Length] + (i >= keys.Length ? i.ToString(System.Globalization.CultureInfo.InvariantCulture) : "");
            entries.Add(new KvSnapshotEntry(5, Encoding.ASCII.GetBytes(key), value, i % 3 == 0 ? Now + i : -1));
        }

        KvSnapshotEntry[] snapshot = [.. entries.OrderBy(e => e.Db)];
        byte[] Write(bool oneHeader, bool sampling, bool compress)
        {
            bool before = RdbWriter.OneHeader;
            RdbWriter.OneHeader = oneHeader;
            try
            {
                var file = new ArrayBufferWriter<byte>();
                var writer = new RdbWriter(span => file.Write(span), compress, checksum: true, RdbWriter.FileChunkBytes) { LzfSampling = sampling };
                writer.WriteAll(snapshot, "7.0.15", Now, 1234, aofBase: true);
                return file.WrittenSpan.ToArray();
            }
            finally
            {
                RdbWriter.OneHeader = before;
            }
        }

        foreach (bool sampling in new[] { true, false })
        {
            foreach (bool compress in new[] { true, false })
            {
                Assert.Equal(Write(oneHeader: false, sampling, compress), Write(oneHeader: true, sampling, compress));
            }
        }
        var (b, result) = Load(Write(oneHeader: true, sampling: true, compress: true), a.Now);
        Assert.Equal(result.KeysLoaded, b.Store.Count);

        static byte[] RandomBytes(Random r, int n)
        {
            byte[] v = new byte[n];
            r.NextBytes(v);
            return v;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Save_then_load_gives_the_same_keys_types_values_expiries_and_stream_groups(int seed)
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, seed);
        byte[] file = Save(a);
        Assert.Equal("REDIS0010", Encoding.ASCII.GetString(file, 0, 9));
        var (b, result) = Load(file, a.Now);
        Assert.Equal(10, result.Version);
        Assert.Equal(a.Store.Count, result.KeysLoaded);
        List<string> expected = Canonical(a), actual = Canonical(b);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) Assert.True(expected[i] == actual[i], $"line {i}: {expected[i]}\n  loaded: {actual[i]}");
    }

    [Fact]
    public void Integer_strings_use_the_integer_encodings_and_the_footer_is_the_crc64_of_the_file()
    {
        var a = new StoreHarness { Now = Now };
        a.Run("SET", "-1", "127");
        a.Run("SET", "k", "-32768");
        a.Run("SET", "k2", "2147483647");
        a.Run("SET", "k3", "2147483648"); // does not fit 32 bits: raw
        a.Run("SET", "k4", "007"); // not canonical: raw
        byte[] file = Save(a);
        string hex = Convert.ToHexStringLower(file);
        Assert.Contains("00" + "c0ff" + "c07f", hex, StringComparison.Ordinal); // type 0, key -1 as int8, value 127 as int8
        Assert.Contains("c10080", hex, StringComparison.Ordinal); // -32768 as int16
        Assert.Contains("c2ffffff7f", hex, StringComparison.Ordinal); // 2147483647 as int32
        Assert.Contains("0a" + Convert.ToHexStringLower("2147483648"u8), hex, StringComparison.Ordinal);
        Assert.Contains("03" + Convert.ToHexStringLower("007"u8), hex, StringComparison.Ordinal);
        Assert.Equal(0xFF, file[^9]);
        Assert.Equal(KvDump.Crc64(file.AsSpan(0, file.Length - 8)), BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(file.Length - 8)));
        var (b, _) = Load(file);
        Assert.Equal("$3\r\n007\r\n", b.Run("GET", "k4"));
        Assert.Equal("$3\r\n127\r\n", b.Run("GET", "-1"));
    }

    [Fact]
    public void Lzf_compress_round_trips_and_gives_up_when_it_does_not_save_enough()
    {
        var r = new Random(11);
        var table = new RdbBlobs.LzfState();
        int compressed = 0;
        for (int i = 0; i < 400; i++)
        {
            int n = r.Next(1, 3) == 1 ? r.Next(3, 100) : r.Next(100, 70_000);
            byte[] input = new byte[n];
            int alphabet = r.Next(4) switch { 0 => 2, 1 => 8, 2 => 64, _ => 256 };
            for (int j = 0; j < n; j++) input[j] = (byte)r.Next(alphabet);
            byte[] output = new byte[Math.Max(1, n - 4)];
            int len = RdbBlobs.LzfCompress(input, output, table);
            if (len == 0) continue; // did not fit in n - 4 bytes
            compressed++;
            Assert.True(len <= n - 4);
            Assert.Equal(input, RdbBlobs.LzfDecompress(output.AsSpan(0, len), n));
            Assert.Equal(len, RdbBlobs.LzfCompress(input, output, table)); // an earlier call's entries are ignored: the same output again
        }
        Assert.True(compressed > 100, $"{compressed} of 400 compressed");
        byte[] noise = new byte[1000];
        r.NextBytes(noise);
        Assert.Equal(0, RdbBlobs.LzfCompress(noise, new byte[996], table)); // incompressible: redis writes it raw
        // 100 'a's as redis-server 7.0.15 compresses them (its DUMP: 00 C3 09 40 64 016161E05700016161 0A00 crc): a
        // 2-byte literal (position 0 is never a reference), a back-reference of 2 + 7 + 0x57 bytes, a last literal "aa".
        byte[] a100 = new byte[96];
        int n100 = RdbBlobs.LzfCompress(Enumerable.Repeat((byte)'a', 100).ToArray(), a100, table);
        Assert.Equal("016161E05700016161", Convert.ToHexString(a100, 0, n100));
    }
    // The count behind LZF's early give-up (issue 14): every way of hashing the positions after the first
    // LzfTestedPositions (scalar, two 128-bit vectors, one AVX2 vector with the bit masks) counts exactly what this test
    // computes on its own (trigram positions less distinct hashes), for every length from 4 to 603 (all the ways a length
    // splits into tested positions, vector steps, scalar positions and the last position) and for longer inputs of each
    // kind; with a count to stop above, each stops past it or counts it all; the bitset is left zero for the next call.
    [Fact]
    public void Lzf_repeated_trigram_count_is_the_same_for_every_scan_and_by_a_set()
    {
        var r = new Random(14);
        RdbBlobs.LzfScan[] scans = [RdbBlobs.LzfScan.Auto, RdbBlobs.LzfScan.Scalar, RdbBlobs.LzfScan.Vector128, RdbBlobs.LzfScan.Avx2];
        RdbBlobs.LzfState[] states = scans.Select(_ => new RdbBlobs.LzfState()).ToArray();
        static int BySet(byte[] input)
        {
            int n = input.Length;
            int log = Math.Clamp(64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(64L * n - 1)), 12, 20);
            var hashes = new HashSet<uint>();
            int positions = 0;
            for (int p = 0; p + 3 <= n; p++)
            {
                uint trigram = (uint)(input[p] | input[p + 1] << 8 | input[p + 2] << 16);
                hashes.Add((trigram * 2654435761u) >> (32 - log));
                positions++;
            }
            return positions - hashes.Count;
        }
        int withRepeats = 0, stoppedEarly = 0;
        for (int i = 0; i < 2400; i++)
        {
            int n = i < 600 ? 4 + i : r.Next(600, 5000);
            byte[] input = new byte[n];
            switch (r.Next(4))
            {
                case 0:
                    r.NextBytes(input);
                    break;
                case 1: // few symbols: many repeats
                    int symbols = r.Next(1, 4) == 1 ? 2 : 64;
                    for (int j = 0; j < n; j++) input[j] = (byte)r.Next(symbols);
                    break;
                case 2: // random, then a repeated tail (repeats only after the tested positions)
                    r.NextBytes(input);
                    for (int j = Math.Min(n, 300); j < n; j++) input[j] = (byte)(j % 7);
                    break;
                default:
                    byte[] chunk = new byte[r.Next(3, 40)];
                    r.NextBytes(chunk);
                    for (int j = 0; j < n; j++) input[j] = r.Next(10) == 0 ? (byte)r.Next(256) : chunk[j % chunk.Length];
                    break;
            }
            int expected = BySet(input);
            if (expected > 0) withRepeats++;
            int stop = r.Next(0, expected + 1);
            for (int k = 0; k < scans.Length; k++)
            {
                Assert.Equal(expected, RdbBlobs.LzfRepeatedTrigrams(input, int.MaxValue, states[k], scans[k]));
                int c = RdbBlobs.LzfRepeatedTrigrams(input, stop, states[k], scans[k]);
                if (stop < expected) Assert.InRange(c, stop + 1, expected);
                else Assert.Equal(expected, c);
                if (c < expected) stoppedEarly++;
                Assert.All(states[k].Seen, w => Assert.Equal(0UL, w));
            }
        }
        Assert.True(withRepeats > 1200, $"{withRepeats} inputs with repeats");
        Assert.True(stoppedEarly > 400, $"{stoppedEarly} counts stopped early");
    }

    // The fast LzfCompress (references without bounds checks, issue 14) against the bounds-checked reference: the same
    // length, the same bytes and the same give-up for inputs that compress well, barely, or not at all (redis-benchmark's
    // 6-bit values, random bytes), for every output budget around the input's length and with tables carried over calls.
    [Fact]
    public void Lzf_compress_gives_the_reference_output_for_every_kind_of_input_and_budget()
    {
        var r = new Random(123);
        var fast = new RdbBlobs.LzfState();
        var reference = new RdbBlobs.LzfState();
        int compressed = 0, givenUp = 0;
        for (int i = 0; i < 3000; i++)
        {
            int n = (i % 3) switch { 0 => r.Next(2, 64), 1 => r.Next(64, 2048), _ => r.Next(2048, 20_000) };
            byte[] input = new byte[n];
            switch (r.Next(5))
            {
                case 0: // a small alphabet: long matches
                    int alphabet = r.Next(1, 5);
                    for (int j = 0; j < n; j++) input[j] = (byte)r.Next(alphabet);
                    break;
                case 1: // repeated chunks with noise: matches near and far (offsets past 8 KB are not references)
                    byte[] chunk = new byte[r.Next(3, 300)];
                    r.NextBytes(chunk);
                    for (int j = 0; j < n; j++) input[j] = r.Next(50) == 0 ? (byte)r.Next(256) : chunk[j % chunk.Length];
                    break;
                case 2: // redis-benchmark's -d values: 64 symbols, a few chance 3-byte repeats, given up
                    uint state = (uint)r.Next();
                    for (int j = 0; j < n; j++)
                    {
                        state = state * 1103515245 + 12345;
                        input[j] = (byte)('0' + ((state >> 16) & 63));
                    }
                    break;
                case 3: // random bytes
                    r.NextBytes(input);
                    break;
                default: // text-like: words from a small vocabulary
                    string[] words = ["set", "key", "value", "redis", "eio", " ", "\r\n", "0123", "lzf"];
                    int k = 0;
                    while (k < n)
                    {
                        foreach (char c in words[r.Next(words.Length)])
                        {
                            if (k < n) input[k++] = (byte)c;
                        }
                    }
                    break;
            }
            int budget = r.Next(4) switch { 0 => Math.Max(1, n - 4), 1 => Math.Max(1, n / 2), 2 => n + 64, _ => r.Next(1, n + 8) };
            byte[] a = new byte[budget], b = new byte[budget];
            int la = RdbBlobs.LzfCompress(input, a, fast);
            int lb = RdbBlobs.LzfCompressReference(input, b, reference);
            Assert.Equal(lb, la);
            Assert.Equal(b.AsSpan(0, lb).ToArray(), a.AsSpan(0, la).ToArray());
            if (la == 0)
            {
                givenUp++;
                continue;
            }
            compressed++;
            Assert.Equal(input, RdbBlobs.LzfDecompress(a.AsSpan(0, la), n));
        }
        Assert.True(compressed > 500 && givenUp > 500, $"{compressed} compressed, {givenUp} given up");
        Assert.True(fast.QuickGiveUps > 200, $"{fast.QuickGiveUps} of {givenUp} give-ups decided by the bound");
        Assert.Equal(0, reference.QuickGiveUps);

        // Near the bound: bytes without a repeated trigram compress to literals only, n + ceil(n / 32) bytes (lzf's
        // checks need one byte of room more at the end); around that budget the fast form answers as the reference,
        // and one byte under it the bound proves the give-up whenever the bitset saw no hash collision among the
        // positions (most 64-byte inputs, not all).
        int tightGiveUps = 0, inputs = 0;
        for (int i = 0; i < 200; i++)
        {
            byte[] distinct = new byte[64];
            r.NextBytes(distinct);
            var trigrams = new HashSet<int>();
            bool repeats = false;
            for (int j = 0; j + 2 < distinct.Length; j++) repeats |= !trigrams.Add(distinct[j] | distinct[j + 1] << 8 | distinct[j + 2] << 16);
            if (repeats) continue;
            inputs++;
            int literalOnly = distinct.Length + (distinct.Length + 31) / 32;
            for (int budget = literalOnly - 2; budget <= literalOnly + 2; budget++)
            {
                byte[] a = new byte[budget], b = new byte[budget];
                long before = fast.QuickGiveUps;
                int la = RdbBlobs.LzfCompress(distinct, a, fast);
                int lb = RdbBlobs.LzfCompressReference(distinct, b, reference);
                Assert.Equal(lb, la);
                Assert.Equal(b, a);
                if (budget == literalOnly - 1) tightGiveUps += (int)(fast.QuickGiveUps - before);
                if (budget == literalOnly + 2) Assert.Equal(literalOnly, la);
            }
        }
        Assert.InRange(tightGiveUps, inputs / 5, inputs - 1);
        long quickBefore = fast.QuickGiveUps;

        // redis-benchmark's 1 KB value (the AOF rewrite's case) is given up by the bound, as lzf gives it up.
        byte[] benchmarkValue = new byte[1024];
        uint lcg = 1234;
        for (int j = 0; j < benchmarkValue.Length; j++)
        {
            lcg = lcg * 1103515245 + 12345;
            benchmarkValue[j] = (byte)('0' + ((lcg >> 16) & 63));
        }
        Assert.Equal(0, RdbBlobs.LzfCompressReference(benchmarkValue, new byte[1020], reference));
        Assert.Equal(0, RdbBlobs.LzfCompress(benchmarkValue, new byte[1020], fast));
        Assert.Equal(quickBefore + 1, fast.QuickGiveUps);

        // A table whose stamps are about to wrap is cleared first, in both.
        fast.Base = reference.Base = int.MaxValue - 100;
        byte[] text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("the same words again ", 20)));
        byte[] x = new byte[text.Length - 4], y = new byte[text.Length - 4];
        int lx = RdbBlobs.LzfCompress(text, x, fast), ly = RdbBlobs.LzfCompressReference(text, y, reference);
        Assert.True(lx > 0);
        Assert.Equal(y.AsSpan(0, ly).ToArray(), x.AsSpan(0, lx).ToArray());
        Assert.Equal(fast.Base, reference.Base);
    }

    // A whole file's writer keeps one 1 MiB buffer and flushes before a piece that does not fit (issue 14): growing it
    // from 64 KiB by doubling cost every AOF rewrite ~4 MB of large-object arrays. A 3 MB file of 1 KB values (each
    // chunk boundary falls inside a value) loads back to the same keyspace, checksum included.
    [Fact]
    public void A_file_is_written_through_one_chunk_buffer_without_growing_it()
    {
        var a = new StoreHarness { Now = Now };
        var r = new Random(5);
        for (int i = 0; i < 3000; i++)
        {
            a.Run("SET", "key:" + i, new string(Enumerable.Range(0, 1024).Select(_ => (char)('0' + r.Next(64))).ToArray()));
        }
        KvSnapshotEntry[] snapshot = a.Store.CreateSnapshot(a.Now);
        var file = new ArrayBufferWriter<byte>(4 << 20);
        KvRdb.Write(snapshot, span => file.Write(span), "7.0.15", a.Now, 0); // warm-up (tier-1 code, the sink's buffer)
        file.ResetWrittenCount();
        long before = GC.GetAllocatedBytesForCurrentThread();
        long written = KvRdb.Write(snapshot, span => file.Write(span), "7.0.15", a.Now, 0);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(file.WrittenCount, written);
        Assert.True(written > 3_000_000, $"{written} bytes");
        // The chunk buffer (1 MiB) and LZF's state (a 256 KiB table, its scratch and bitset); growing the buffer by
        // doubling to 2 MiB allocated 4 MB.
        Assert.True(allocated < 1_600_000, $"{allocated} bytes allocated for a {written}-byte file");
        byte[] bytes = file.WrittenSpan.ToArray();
        Assert.Equal(KvDump.Crc64(bytes.AsSpan(0, bytes.Length - 8)), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8)));
        Assert.Equal(Canonical(a), Canonical(Load(bytes, a.Now).Harness));
    }

    [Fact]
    public void Rdbcompression_no_writes_raw_strings_and_both_files_load_the_same()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 12, keysPerDb: 20);
        a.Run("SET", "long", new string('q', 10_000));
        byte[] lzf = Save(a);
        var raw = new ArrayBufferWriter<byte>();
        KvRdb.Write(a.Store.CreateSnapshot(a.Now), span => raw.Write(span), "7.0.15", a.Now, 1234, compression: false);
        Assert.True(raw.WrittenCount > lzf.Length + 9_000, $"{raw.WrittenCount} bytes raw, {lzf.Length} with LZF");
        Assert.Contains("C3", Convert.ToHexString(lzf), StringComparison.Ordinal);
        List<string> expected = Canonical(a);
        Assert.Equal(expected, Canonical(Load(lzf, a.Now).Harness));
        Assert.Equal(expected, Canonical(Load(raw.WrittenSpan.ToArray(), a.Now).Harness));
    }

    [Fact]
    public void Rdbchecksum_no_writes_a_zero_crc_and_a_load_without_verification_ignores_a_wrong_one()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 13, keysPerDb: 10);
        var file = new ArrayBufferWriter<byte>();
        KvRdb.Write(a.Store.CreateSnapshot(a.Now), span => file.Write(span), "7.0.15", a.Now, 1234, checksum: false);
        byte[] bytes = file.WrittenSpan.ToArray();
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8)));
        Assert.Equal(Canonical(a), Canonical(Load(bytes, a.Now).Harness));

        byte[] wrong = Save(a);
        wrong[^1] ^= 0x40; // a wrong, non-zero checksum
        Assert.Contains("checksum", Assert.Throws<RdbFormatException>(() => Load(wrong, a.Now)).Message, StringComparison.Ordinal);
        var h = new StoreHarness(new KvStore(random: new Random(2))) { Now = a.Now };
        KvRdb.Load(new MemoryStream(wrong), wrong.Length, h.Store, a.Now, verifyChecksum: false);
        Assert.Equal(Canonical(a), Canonical(h));
    }

    [Fact]
    public void Keys_expired_at_load_time_are_skipped_and_counted()
    {
        var a = new StoreHarness { Now = Now };
        a.Run("SET", "live", "1");
        a.Run("SET", "soon", "1", "PX", "5000");
        a.Run("RPUSH", "later", "x");
        a.Run("PEXPIRE", "later", "60000");
        var (b, result) = Load(Save(a), Now + 10_000);
        Assert.Equal(2, result.KeysLoaded);
        Assert.Equal(1, result.ExpiredSkipped);
        Assert.Equal(":0\r\n", b.Run("EXISTS", "soon"));
        Assert.Equal($":{Now + 60000}\r\n", b.Run("PEXPIRETIME", "later"));
    }

    [Fact]
    public void Every_truncation_is_refused_with_an_RdbFormatException()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 7, keysPerDb: 6);
        byte[] file = Save(a);
        for (int length = 0; length < file.Length; length += Math.Max(1, file.Length / 500))
        {
            byte[] cut = file[..length];
            var e = Assert.Throws<RdbFormatException>(() => Load(cut));
            Assert.False(string.IsNullOrEmpty(e.Message));
        }
    }

    [Fact]
    public void A_flipped_byte_is_caught_by_the_checksum()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 8, keysPerDb: 6);
        byte[] file = Save(a);
        var r = new Random(3);
        for (int i = 0; i < 100; i++)
        {
            byte[] bad = (byte[])file.Clone();
            int at = r.Next(9, bad.Length - 9); // past the header, before the checksum
            bad[at] ^= (byte)(1 << r.Next(8));
            Assert.Throws<RdbFormatException>(() => Load(bad));
        }
    }

    [Fact]
    public void Without_a_checksum_any_corruption_is_an_RdbFormatException_or_a_valid_load_never_another_exception()
    {
        var a = new StoreHarness { Now = Now };
        Fill(a, 9, keysPerDb: 8);
        byte[] file = Save(a);
        file.AsSpan(file.Length - 8).Clear(); // a zero checksum: not checked (rdbchecksum no)
        Load(file); // the unchanged file loads
        var r = new Random(4);
        int refused = 0;
        for (int i = 0; i < 400; i++)
        {
            byte[] bad = (byte[])file.Clone();
            int flips = r.Next(1, 4);
            for (int f = 0; f < flips; f++) bad[r.Next(9, bad.Length - 9)] = (byte)r.Next(256);
            try
            {
                Load(bad);
            }
            catch (RdbFormatException)
            {
                refused++;
            }
        }
        Assert.True(refused > 0);
    }

    [Theory]
    [InlineData("REDIS0012", "Can't handle RDB format version 0012")]
    [InlineData("REDIT0010", "Wrong signature")]
    public void Bad_headers_are_refused(string header, string message)
    {
        byte[] file = [.. Encoding.ASCII.GetBytes(header), 0xFF, 0, 0, 0, 0, 0, 0, 0, 0];
        var e = Assert.Throws<RdbFormatException>(() => Load(file));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Module_values_are_refused_with_a_clear_error()
    {
        byte[] file = [.. "REDIS0010"u8, Rdb.TypeModule2, 1, (byte)'k', 0, 0, 0, 0, 0, 0, 0, 0, 0xFF];
        var e = Assert.Throws<RdbFormatException>(() => Load(file));
        Assert.Contains("module", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_database_over_the_configured_count_is_refused()
    {
        byte[] file = [.. "REDIS0010"u8, Rdb.OpSelectDb, 20, Rdb.OpEof, 0, 0, 0, 0, 0, 0, 0, 0];
        var e = Assert.Throws<RdbFormatException>(() => Load(file));
        Assert.Contains("databases", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicated_key_is_refused()
    {
        byte[] file = [.. "REDIS0010"u8, 0, 1, (byte)'k', 1, (byte)'a', 0, 1, (byte)'k', 1, (byte)'b', Rdb.OpEof, 0, 0, 0, 0, 0, 0, 0, 0];
        var e = Assert.Throws<RdbFormatException>(() => Load(file));
        Assert.Contains("Duplicated key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Listpacks_round_trip_every_integer_and_string_width()
    {
        long[] ints = [0, 127, 128, -1, -4096, 4095, 4096, -4097, short.MaxValue, short.MinValue, 32768, -(1 << 23), (1 << 23) - 1, 1 << 23,
            int.MinValue, int.MaxValue, long.MaxValue, long.MinValue];
        string[] strings = ["", "a", new('b', 63), new('c', 64), new('d', 4095), new('e', 4096), new('f', 70000)];
        var lp = new RdbListpackBuilder();
        lp.Reset();
        foreach (long v in ints) lp.Add(v);
        foreach (string s in strings) lp.Add(Encoding.ASCII.GetBytes(s));
        List<byte[]> back = RdbBlobs.Listpack(lp.Finish().ToArray());
        Assert.Equal([.. ints.Select(v => v.ToString(CultureInfo.InvariantCulture)), .. strings], back.Select(b => Encoding.ASCII.GetString(b)));
    }

    [Fact]
    public void Ziplists_intsets_zipmaps_and_lzf_decode()
    {
        // A ziplist (ziplist.c) with "ab", 12 (immediate), -2 (int8), 300 (int16), 70000 (int24).
        byte[] entries = [0, 0x02, (byte)'a', (byte)'b', 4, 0xFD, 2, 0xFE, 0xFE, 3, 0xC0, 0x2C, 0x01, 4, 0xF0, 0x70, 0x11, 0x01];
        byte[] zl = [.. new byte[10], .. entries, 0xFF];
        BinaryPrimitives.WriteUInt32LittleEndian(zl, (uint)zl.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(zl.AsSpan(8), 5);
        Assert.Equal(["ab", "12", "-2", "300", "70000"], RdbBlobs.Ziplist(zl).Select(b => Encoding.ASCII.GetString(b)));

        byte[] intset = [2, 0, 0, 0, 3, 0, 0, 0, 0xFF, 0xFF, 5, 0, 0x10, 0x27]; // int16: -1, 5, 10000
        Assert.Equal(["-1", "5", "10000"], RdbBlobs.Intset(intset).Select(b => Encoding.ASCII.GetString(b)));

        byte[] zipmap = [1, 1, (byte)'f', 2, 1, (byte)'v', (byte)'1', 0, 0xFF]; // field f, value v1, one free byte
        var pairs = RdbBlobs.Zipmap(zipmap);
        Assert.Equal("f=v1", string.Join(",", pairs.Select(p => Encoding.ASCII.GetString(p.Item1) + "=" + Encoding.ASCII.GetString(p.Item2))));

        // LZF: the literal "abc", then a back reference of 6 bytes at distance 3.
        byte[] lzf = [2, (byte)'a', (byte)'b', (byte)'c', 4 << 5, 2];
        Assert.Equal("abcabcabc", Encoding.ASCII.GetString(RdbBlobs.LzfDecompress(lzf, 9)!));
        Assert.Null(RdbBlobs.LzfDecompress(lzf, 10)); // the declared length does not match
        Assert.Null(RdbBlobs.LzfDecompress([4 << 5, 200], 9)); // a reference before the start
    }

    [Fact]
    public void Function_libraries_are_saved_and_loaded()
    {
        var a = new StoreHarness { Now = Now };
        string code = "#!lua name=rdblib\nredis.register_function('rdbf', function(keys, args) return 7 end)";
        Assert.StartsWith("$", a.Run("FUNCTION", "LOAD", code), StringComparison.Ordinal);
        a.Run("SET", "k", "v");
        var (b, _) = Load(Save(a));
        Assert.Equal(":7\r\n", b.Run("FCALL", "rdbf", "0"));
    }
    /// <summary>The writer counts a database's RESIZEDB sizes from the entries' databases and expiries (it reads no
    /// value before the key loop, h216 §213): keys and expiring keys per database, the FUNCTION libraries' entry (the
    /// snapshot's first) not counted; the file loads with the libraries and every key.</summary>
    [Fact]
    public void Resizedb_sizes_count_each_databases_keys_and_expiries_without_the_function_libraries()
    {
        var a = new StoreHarness { Now = Now };
        string code = "#!lua name=sizelib\nredis.register_function('sizef', function(keys, args) return 3 end)";
        Assert.StartsWith("$", a.Run("FUNCTION", "LOAD", code), StringComparison.Ordinal);
        for (int i = 0; i < 5; i++) a.Run("SET", "a" + i, new string('v', 100 + i));
        a.Run("PEXPIRE", "a1", "100000");
        a.Run("SELECT", "2");
        for (int i = 0; i < 3; i++) a.Run("SET", "b" + i, "x");
        a.Run("PEXPIRE", "b0", "100000");
        a.Run("PEXPIRE", "b2", "100000");
        KvSnapshotEntry[] snapshot = a.Store.CreateSnapshot(a.Now);
        Assert.IsType<KvFunctionLibraries>(snapshot[0].Value);
        byte[] file = Save(a);
        Assert.Equal([(0, 5, 1), (2, 3, 2)], ResizeDbs(file));
        var (b, result) = Load(file, a.Now);
        Assert.Equal(8, result.KeysLoaded);
        Assert.Equal(":3\r\n", b.Run("FCALL", "sizef", "0"));

        // A FUNCTION libraries' entry anywhere but first breaks the writer's contract: refused, not written as a key.
        KvSnapshotEntry[] misplaced = [snapshot[1], snapshot[0], .. snapshot[2..]];
        Assert.Throws<ArgumentException>(() => KvRdb.Write(misplaced, _ => { }, "7.0.15", Now, 0));
    }

    // (db, keys, expires) of each SELECTDB + RESIZEDB pair of a file written by this writer (the pair follows the AUX
    // fields and the FUNCTION2 records; a key's bytes never start a false match here: short ASCII keys and values).
    private static List<(int Db, int Keys, int Expires)> ResizeDbs(byte[] file)
    {
        var found = new List<(int, int, int)>();
        for (int i = 0; i + 4 < file.Length - 9; i++) // not into EOF and the CRC-64
        {
            if (file[i] == 0xFE && file[i + 1] < 16 && file[i + 2] == 0xFB && file[i + 3] < 64 && file[i + 4] < 64)
            {
                found.Add((file[i + 1], file[i + 3], file[i + 4]));
            }
        }
        return found;
    }
}
