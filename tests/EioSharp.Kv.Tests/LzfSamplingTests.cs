using System.Buffers;
using System.Text;
using EioSharp.Kv;
using static EioSharp.Kv.Tests.LzfTestValues;

namespace EioSharp.Kv.Tests;

/// <summary>The RDB writer's adaptive compression of string values (issue 14, h176): after
/// <see cref="RdbWriter.LzfMissesBeforeSampling"/> values in a row that LZF gave up on, values are written raw without
/// trying, one in a run of up to <see cref="RdbWriter.LzfMaxSkip"/> tried (a probe), until a try compresses. A value
/// written raw is what LZF's give-up writes too, so an incompressible keyspace gives the same bytes; a compressible one
/// after an incompressible stretch loses at most one run.</summary>
public class LzfSamplingTests
{
    private const long Now = 1_700_000_000_000;

    private static KvSnapshotEntry[] Entries(IEnumerable<byte[]> values) =>
        values.Select((v, i) => new KvSnapshotEntry(0, Encoding.ASCII.GetBytes("key:" + i), v, -1)).ToArray();

    private static (byte[] File, long SampledOut) Write(KvSnapshotEntry[] entries, bool sampling)
    {
        var file = new ArrayBufferWriter<byte>();
        var writer = new RdbWriter(span => file.Write(span), compress: true, checksum: true, RdbWriter.FileChunkBytes) { LzfSampling = sampling };
        writer.WriteAll(entries, "7.0.15", Now, 0);
        return (file.WrittenSpan.ToArray(), writer.LzfSampledOut);
    }

    private static List<string> Loaded(byte[] file)
    {
        var h = new StoreHarness(new KvStore(random: new Random(2))) { Now = Now };
        KvRdb.Load(new MemoryStream(file), file.Length, h.Store, Now);
        return h.Store.CreateSnapshot(Now).Select(e => Encoding.ASCII.GetString(e.Key) + "=" + Convert.ToHexString((byte[])e.Value)).Order().ToList();
    }

    // The values tried of `count` incompressible ones in a row: the first LzfMissesBeforeSampling, then one after each run
    // of LzfFirstSkip, doubling up to LzfMaxSkip.
    private static int TriedOf(int count)
    {
        int tried = 0, skip = 0, i = 0;
        while (i < count)
        {
            tried++;
            i++;
            if (tried >= RdbWriter.LzfMissesBeforeSampling)
            {
                skip = skip == 0 ? RdbWriter.LzfFirstSkip : Math.Min(2 * skip, RdbWriter.LzfMaxSkip);
                i += skip;
            }
        }
        return tried;
    }

    [Fact]
    public void An_incompressible_keyspace_is_mostly_written_without_trying_and_gives_the_same_file()
    {
        const int Count = 3000;
        var random = new Random(176);
        KvSnapshotEntry[] entries = Entries(Enumerable.Range(0, Count).Select(_ => RandomValue(random)));
        (byte[] sampled, long sampledOut) = Write(entries, sampling: true);
        (byte[] tried, long none) = Write(entries, sampling: false);
        Assert.Equal(0, none);
        Assert.Equal(Count - TriedOf(Count), sampledOut);
        Assert.True(sampledOut > Count * 9 / 10, $"{sampledOut} of {Count} written raw without trying");
        Assert.Equal(tried, sampled); // LZF gives up on each: raw either way
        Assert.Equal(Count, Loaded(sampled).Count);
    }

    [Fact]
    public void A_compressible_keyspace_is_never_sampled()
    {
        KvSnapshotEntry[] entries = Entries(Enumerable.Range(0, 1000).Select(i => TextValue(i)));
        (byte[] sampled, long sampledOut) = Write(entries, sampling: true);
        Assert.Equal(0, sampledOut);
        Assert.Equal(Write(entries, sampling: false).File, sampled);
    }

    [Fact]
    public void Compressible_values_after_an_incompressible_stretch_are_compressed_again_after_at_most_one_run()
    {
        const int Random = 2000, Text = 1000;
        var random = new Random(177);
        byte[][] values = Enumerable.Range(0, Random).Select(_ => RandomValue(random)).Concat(Enumerable.Range(0, Text).Select(i => TextValue(i))).ToArray();
        KvSnapshotEntry[] entries = Entries(values);
        (byte[] sampled, long sampledOut) = Write(entries, sampling: true);
        (byte[] tried, _) = Write(entries, sampling: false);
        Assert.Equal(Loaded(tried), Loaded(sampled));
        // The text values written raw: those of the run that was skipping when the stretch ended (at most LzfMaxSkip).
        long textRaw = sampledOut - (Random - TriedOf(Random));
        Assert.InRange(textRaw, 0, RdbWriter.LzfMaxSkip);
        int compressedText = new RdbBlobs.LzfState() is var state ? RdbBlobs.LzfCompress(values[^1], new byte[1020], state) : 0;
        Assert.True(compressedText > 0);
        // Each text value written raw costs the file at most its length less its compressed length, plus a few header bytes.
        Assert.InRange(sampled.Length - tried.Length, -RdbWriter.LzfMaxSkip, textRaw * (1024 - compressedText + 8) + RdbWriter.LzfMaxSkip);
        // A probe that compresses ends the sampling: the rest of the text is tried, and compresses.
        Assert.True(tried.Length < Random * 1024 + Text * 300, $"{tried.Length} bytes");
        Assert.True(sampled.Length < Random * 1030 + (Text - RdbWriter.LzfMaxSkip) * 300 + RdbWriter.LzfMaxSkip * 1030, $"{sampled.Length} bytes");
    }

    [Fact]
    public void Values_proven_by_an_earlier_snapshot_neither_start_nor_end_the_sampling()
    {
        // A leased snapshot over random values: the first write proves a few (the tried ones), the second writes those
        // raw on their proof and samples the rest again; both files load to the keyspace.
        const int Count = 600;
        var h = new StoreHarness { Now = Now };
        var random = new Random(178);
        for (int i = 0; i < Count; i++)
        {
            byte[] v = RandomValue(random);
            for (int k = 0; k < 2; k++) // the second SET of the same length: an array of the row's own (proofs kept)
            {
                h.Store.Execute(KvCommand.Create([Encoding.ASCII.GetBytes("SET"), Encoding.ASCII.GetBytes("r" + i), v]), h.Now,
                    new RespWriter(new ArrayBufferWriter<byte>()), null);
            }
        }
        long[] sampled = new long[2], proven = new long[2];
        for (int round = 0; round < 2; round++)
        {
            KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
            var file = new MemoryStream();
            KvRdb.Write(lease.Entries, span => file.Write(span), "7.0.15", Now, 0, lease: lease);
            sampled[round] = lease.SampledOut;
            proven[round] = lease.IncompressibleSkipped;
            lease.Dispose();
            Assert.Equal(Count, Loaded(file.ToArray()).Count);
        }
        Assert.Equal(0, proven[0]);
        Assert.Equal(Count - TriedOf(Count), sampled[0]);
        Assert.Equal(Count - sampled[0], proven[1]); // the tried ones were proven
        Assert.Equal(sampled[0] - TriedOf((int)sampled[0]), sampled[1]); // the unproven sampled again, the proven not counted
        Assert.Contains($"Snapshot strings written raw by sampling (the tries before them incompressible): {sampled[0] + sampled[1]}",
            h.Run("MEMORY", "MALLOC-STATS"));
    }
}
