using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>Redis 7's AOF manifest (AofManifest): the text redis-server 7.0.15 writes and reads, its naming rules and its
/// errors; and the loader's skipping of <c>#TS</c> annotations.</summary>
public sealed class AofManifestTests
{
    [Fact]
    public void Parses_and_formats_redis_lines_in_base_history_incr_order()
    {
        const string Text = "file appendonly.aof.3.base.rdb seq 3 type b\n" +
                            "file appendonly.aof.2.incr.aof seq 2 type h\n" +
                            "file appendonly.aof.2.base.rdb seq 2 type h\n" +
                            "file appendonly.aof.3.incr.aof seq 3 type i\n" +
                            "file appendonly.aof.4.incr.aof seq 4 type i\n";
        var m = AofManifest.Parse(Text);
        Assert.Equal("appendonly.aof.3.base.rdb", m.Base!.FileName);
        Assert.Equal(3, m.CurrentBaseSequence);
        Assert.Equal(4, m.CurrentIncrSequence);
        Assert.Equal(["appendonly.aof.3.incr.aof", "appendonly.aof.4.incr.aof"], m.Incr.Select(i => i.FileName));
        Assert.Equal(2, m.History.Count);
        Assert.Equal(Text, m.Format());
    }

    [Fact]
    public void A_rewrite_names_the_next_base_and_incr_and_moves_the_old_ones_to_history_as_redis()
    {
        var m = new AofManifest();
        Assert.Equal("appendonly.aof.1.base.rdb", m.NewBase("appendonly.aof", rdbFormat: true));
        Assert.Equal("appendonly.aof.1.incr.aof", m.LastIncrOrNew("appendonly.aof"));
        Assert.Equal("appendonly.aof.1.incr.aof", m.LastIncrOrNew("appendonly.aof"));
        Assert.Equal("appendonly.aof.2.incr.aof", m.NewIncr("appendonly.aof")); // openNewIncrAofForAppend
        Assert.Equal("appendonly.aof.2.base.aof", m.NewBase("appendonly.aof", rdbFormat: false)); // backgroundRewriteDoneHandler
        m.MarkRewrittenIncrAsHistory(keepLast: true);
        Assert.Equal("file appendonly.aof.2.base.aof seq 2 type b\n" +
                     "file appendonly.aof.1.incr.aof seq 1 type h\n" +
                     "file appendonly.aof.1.base.rdb seq 1 type h\n" +
                     "file appendonly.aof.2.incr.aof seq 2 type i\n", m.Format());
        Assert.True(m.Dirty);
        var copy = m.Clone();
        copy.History.Clear();
        Assert.Equal(2, m.History.Count); // a deep enough copy: lists are not shared
    }

    [Fact]
    public void Upgrade_names_the_old_file_as_base_1()
    {
        var m = new AofManifest();
        m.SetUpgradedBase("appendonly.aof");
        m.LastIncrOrNew("appendonly.aof");
        Assert.Equal("file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n", m.Format());
        Assert.Equal("appendonly.aof.2.base.rdb", m.NewBase("appendonly.aof", rdbFormat: true));
    }

    [Fact]
    public void Names_with_blanks_or_quotes_are_quoted_as_sdscatrepr_and_read_back()
    {
        var m = new AofManifest();
        m.SetUpgradedBase("my file\"x\".aof");
        string text = m.Format();
        Assert.Equal("file \"my file\\\"x\\\".aof\" seq 1 type b\n", text);
        Assert.Equal("my file\"x\".aof", AofManifest.Parse(text).Base!.FileName);
        Assert.Equal("a b", AofManifest.Parse("file 'a b' seq 1 type b\n").Base!.FileName);
        Assert.Equal("\u0001", AofManifest.Parse("file \"\\x01\" seq 1 type b\n").Base!.FileName);
    }

    [Fact]
    public void Comments_and_unknown_keys_are_skipped_and_keys_are_case_insensitive()
    {
        var m = AofManifest.Parse("# a comment\nFILE a.aof SEQ 7 TYPE i extra 1\n");
        Assert.Equal("a.aof", m.Incr.Single().FileName);
        Assert.Equal(7, m.Incr.Single().Sequence);
    }

    [Theory]
    [InlineData("", "Found an empty AOF manifest")]
    [InlineData("file a seq 1 type b\n\n", "Invalid AOF manifest file format")]
    [InlineData("file a seq 1\n", "Invalid AOF manifest file format")]
    [InlineData("file a seq 1 type b x\n", "Invalid AOF manifest file format")]
    [InlineData("file a seq 0 type b\n", "Invalid AOF manifest file format")]
    [InlineData("file a seq x type b\n", "Invalid AOF manifest file format")]
    [InlineData("file \"a seq 1 type b\n", "Invalid AOF manifest file format")]
    [InlineData("file d/a seq 1 type b\n", "File can't be a path, just a filename")]
    [InlineData("file a seq 1 type b\nfile b seq 2 type b\n", "Found duplicate base file information")]
    [InlineData("file a seq 2 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number")]
    [InlineData("file a seq 1 type z\n", "Unknown AOF file type")]
    public void Malformed_manifests_get_redis_errors(string text, string error)
    {
        var e = Assert.Throws<AofManifestException>(() => AofManifest.Parse(text));
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void Too_long_lines_are_refused()
    {
        var e = Assert.Throws<AofManifestException>(() => AofManifest.Parse("file " + new string('a', 1100) + " seq 1 type b\n"));
        Assert.Equal("The AOF manifest file contains too long line", e.Message);
    }

    [Fact]
    public void A_MULTI_without_EXEC_at_the_end_is_reported_as_a_reverted_transaction()
    {
        byte[] head = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n");
        byte[] tx = Encoding.ASCII.GetBytes("*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n");
        var store = new KvStore(RespLimits.Default);
        var result = AofLoader.Load([.. head, .. tx], store, 0);
        Assert.True(result.IsTruncated);
        Assert.True(result.TransactionReverted);
        Assert.Equal(head.Length, result.ValidLength);
        Assert.Equal(1, store.Count);
        var plain = AofLoader.Load([.. head, .. "*3\r\n$3"u8], new KvStore(RespLimits.Default), 0);
        Assert.True(plain.IsTruncated);
        Assert.False(plain.TransactionReverted);
    }

    [Fact]
    public void The_loader_skips_TS_annotations_and_treats_a_torn_one_as_a_torn_tail()
    {
        byte[] data = Encoding.ASCII.GetBytes("#TS:1700000000\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n#TS:1700000001\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n");
        var store = new KvStore(RespLimits.Default);
        var result = AofLoader.Load(data, store, 0);
        Assert.False(result.IsTruncated);
        Assert.Equal(2, result.CommandCount);
        Assert.Equal(2, store.Count);

        byte[] torn = [.. data, .. "#TS:17"u8];
        var store2 = new KvStore(RespLimits.Default);
        var r2 = AofLoader.Load(torn, store2, 0);
        Assert.True(r2.IsTruncated);
        Assert.Equal(data.Length, r2.ValidLength);
        var r3 = AofLoader.Load(new MemoryStream(torn), new KvStore(RespLimits.Default), 0);
        Assert.True(r3.IsTruncated);
        Assert.Equal(data.Length, r3.ValidLength);
        Assert.Equal(2, r3.CommandCount);
    }
}
