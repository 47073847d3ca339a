using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xunit.Abstractions;
using static EioSharp.Kv.EndToEnd.Tools;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Crash safety with appendfsync always, torn tails, corruption, graceful shutdown, AOF rewrite.</summary>
public sealed class DurabilityTests(ITestOutputHelper output)
{
    private static string S(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The server's default under always since session 38 (§210): the AOF's tail prepared ahead with written
    /// zeros (<c>MappedTailAppender.ZeroFillAhead</c>), the appends pwrites into zeros already on the device; a reply still
    /// leaves only after its round's fdatasync. A killed server leaves the zeros past its last record (where the files can
    /// be mapped: not the portable backend's), which the restart cuts.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // with background rewrites going on all the time (a 16 KiB threshold)
    public void Every_acknowledged_write_survives_SIGKILL_with_appendfsync_always(bool rewrites) =>
        AcknowledgedWritesSurviveSigkill("always", rewrites, expectZeroTail: true);

    /// <summary>The same under everysec (issue 14, session 21): a SIGKILL loses nothing acknowledged either, since a reply
    /// leaves only after its bytes were written to the file (the page cache outlives the process). Six clients at once,
    /// so that on io_uring their write rounds run inline and share the write made before the domain submits the replies
    /// (<c>StoreOwner.DeferAofWrites</c>).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_acknowledged_write_survives_SIGKILL_with_appendfsync_everysec(bool rewrites) => AcknowledgedWritesSurviveSigkill("everysec", rewrites);

    /// <summary>The same under always with overlapped rounds (session 33, h189: <c>EIOSHARP_KV_ALWAYS_OVERLAP=1</c>, the hinted
    /// wait expects only the other cohort of writers): 16 writers, at least the 8 the overlap needs, so that rounds follow
    /// each other without waiting for every writer; a reply still leaves only after its round's fdatasync. On io_uring
    /// (the only backend whose rounds wait with a hint) the server's log must show the overlap engaged.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_acknowledged_write_survives_SIGKILL_with_appendfsync_always_overlapped(bool rewrites) =>
        AcknowledgedWritesSurviveSigkill("always", rewrites, writers: 16,
            environment: new Dictionary<string, string?> { ["EIOSHARP_KV_ALWAYS_OVERLAP"] = "1" }, expectLog: "overlapped rounds");

    /// <summary>INFO persistence counts the always path's schedule (session 36, h201): with 8 clients writing at once on
    /// io_uring, the rounds whose sleep waited for their writers (<c>aof_always_hinted_rounds</c>), and the lines for the
    /// misses, the overlapped rounds and the guard's probes and kept switches beside it, and (session 39, h215, §212) the
    /// rounds' own time, their fdatasyncs' and the hinted waits'; on the other backends (no
    /// hinted wait) the lines are absent, as before any hinted round.</summary>
    [Fact]
    public void Info_counts_the_always_rounds_that_waited_for_their_writers()
    {
        using var server = KvServerProcess.Start("--appendfsync", "always");
        string backend = System.Text.RegularExpressions.Regex.Match(server.Log, @"backend (\w+)").Groups[1].Value;
        int ok = 0;
        var writers = Enumerable.Range(0, 8).Select(w => new Thread(() =>
        {
            using var c = new RespClient(server.Port);
            for (int i = 0; i < 300; i++)
            {
                c.SendCommand("SET", $"k:{w}:{i}", "v");
                if (c.ReadReply() == "+OK")
                {
                    Interlocked.Increment(ref ok);
                }
            }
        })).ToList();
        writers.ForEach(t => t.Start());
        writers.ForEach(t => t.Join());
        Assert.Equal(8 * 300, ok);
        Thread.Sleep(400); // INFO's persistence numbers are refreshed by the 10 Hz cron
        using var admin = new RespClient(server.Port);
        string info = admin.Call("INFO", "persistence");
        output.WriteLine($"backend {backend}: {info}");
        string[] lines = ["aof_always_hinted_rounds:", "aof_always_hint_misses:", "aof_always_overlap_rounds:", "aof_always_guard_probes:", "aof_always_guard_switches:",
            "aof_always_timed_rounds:", "aof_always_round_us:", "aof_always_fsync_us:", "aof_always_timed_waits:", "aof_always_wait_us:"];
        if (backend == "uring")
        {
            var hinted = System.Text.RegularExpressions.Regex.Match(info, @"aof_always_hinted_rounds:(\d+)");
            Assert.True(hinted.Success, info);
            Assert.True(long.Parse(hinted.Groups[1].Value, CultureInfo.InvariantCulture) > 0, info);
            Assert.All(lines, l => Assert.Contains(l, info, StringComparison.Ordinal));
            // Session 39, h215 (§212): the rounds' time split: timed rounds, their own time and their fdatasyncs' (> 0),
            // the fdatasyncs within the rounds' own time.
            long Counter(string name)
            {
                var m = System.Text.RegularExpressions.Regex.Match(info, name + @":(\d+)");
                Assert.True(m.Success, name + " in " + info);
                return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }

            Assert.True(Counter("aof_always_timed_rounds") > 0, info);
            Assert.True(Counter("aof_always_fsync_us") > 0, info);
            Assert.InRange(Counter("aof_always_fsync_us"), 1, Counter("aof_always_round_us"));
        }
        else
        {
            Assert.All(lines, l => Assert.DoesNotContain(l, info, StringComparison.Ordinal));
        }
    }

    /// <summary>The same under always with the zero tail turned off (<c>EIOSHARP_KV_ALWAYS_ZERO_TAIL=0</c>, the default
    /// before session 38, §210): every round's append is a pwrite past the end, so a killed server leaves no zeros.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_acknowledged_write_survives_SIGKILL_with_appendfsync_always_appended_past_the_end(bool rewrites) =>
        AcknowledgedWritesSurviveSigkill("always", rewrites,
            environment: new Dictionary<string, string?> { ["EIOSHARP_KV_ALWAYS_ZERO_TAIL"] = "0" }, expectNoZeroTail: true);

    private void AcknowledgedWritesSurviveSigkill(string fsync, bool rewrites, int writers = 6, IReadOnlyDictionary<string, string?>? environment = null,
        string? expectLog = null, bool expectZeroTail = false, bool expectNoZeroTail = false)
    {
        string backend = "";
        using var dir = new TempDir();
        string[] serverArgs = rewrites
            ? ["--appendfsync", fsync, "--auto-aof-rewrite-min-size", "16kb", "--auto-aof-rewrite-percentage", "50"]
            : ["--appendfsync", fsync];
        environment ??= new Dictionary<string, string?>();
        var acked = new ConcurrentDictionary<string, string>();
        var lastCounter = new ConcurrentDictionary<int, long>();
        int rewritesDone = 0;
        using (var server = KvServerProcess.StartIn(dir.DataDir, environment, serverArgs))
        {
            int port = server.Port;
            using var started = new CountdownEvent(writers);
            var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
            {
                bool signalled = false;
                try
                {
                    using var c = new RespClient(port);
                    for (int i = 0; ; i++)
                    {
                        if (w % 2 == 0)
                        {
                            string key = $"key:{w}:{i}";
                            c.SendCommand("SET", key, S(i));
                            if (c.ReadReply() == "+OK")
                            {
                                acked[key] = S(i);
                            }
                        }
                        else
                        {
                            c.SendCommand("INCR", $"counter:{w}");
                            string r = c.ReadReply();
                            lastCounter[w] = long.Parse(r.AsSpan(1), CultureInfo.InvariantCulture);
                        }

                        if (i == 20 && !signalled)
                        {
                            signalled = true;
                            started.Signal();
                        }
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException or InvalidDataException)
                {
                    // The server died under us: expected.
                }
                finally
                {
                    if (!signalled)
                    {
                        started.Signal();
                    }
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            Assert.True(started.Wait(TimeSpan.FromSeconds(20)));
            Thread.Sleep(1000); // load in full swing
            if (rewrites)
            {
                // Kill only once a rewrite has completed under the load (bounded): on a loaded machine the first one can
                // take longer than the second above, and the point is a SIGKILL with rewrites going on.
                var waiting = System.Diagnostics.Stopwatch.StartNew();
                while (waiting.Elapsed < TimeSpan.FromSeconds(30) && !server.Log.Contains("Background AOF rewrite finished", StringComparison.Ordinal))
                {
                    Thread.Sleep(50);
                }
            }

            if (expectLog is not null && System.Text.RegularExpressions.Regex.Match(server.Log, @"backend (\w+)").Groups[1].Value == "uring")
            {
                Assert.Contains(expectLog, server.Log); // the path under test ran before the kill
            }

            backend = System.Text.RegularExpressions.Regex.Match(server.Log, @"backend (\w+)").Groups[1].Value;
            server.Kill(); // SIGKILL, mid-write
            // Kill waits up to 10 s for the exit; a process in an uninterruptible write or fsync on a busy disk can take
            // longer to go, and until it has gone a finishing rewrite may still replace the manifest. Bounded.
            Assert.NotNull(server.WaitForExit(TimeSpan.FromSeconds(60)));
            threads.ForEach(t => t.Join(TimeSpan.FromSeconds(20)));
            rewritesDone = System.Text.RegularExpressions.Regex.Matches(server.Log, "Background AOF rewrite finished").Count;
        }

        if (rewrites)
        {
            Assert.True(rewritesDone > 0, "no rewrite happened during the load");
        }

        Assert.True(acked.Count > 50, $"only {acked.Count} acknowledged SETs");
        // The AOF is appended through a mapped tail (session 28): a killed server leaves the zeros reserved past its last
        // record, which redis-check-aof calls a format error and the next start cuts off before it appends.
        // The part with the killed server's tail: with rewrites the kill can come right after a rewrite opened a new,
        // still empty incremental file, and then the zeros are in the one before it (seen once under load in session 39:
        // last part 0 bytes, redis-check-aof failing on the earlier part's zeros, which the restart cut as such).
        string lastPart = AofFiles.LastWrittenPart(dir.DataDir);
        long killedLength = new FileInfo(lastPart).Length;
        bool zeroTail = killedLength > 0 && EndsInZero(lastPart);
        bool tornTail = CheckAof(dir.AofPath).ExitCode != 0;
        output.WriteLine($"{acked.Count} SETs and {lastCounter.Values.Sum()} INCRs acknowledged before SIGKILL; {rewritesDone} rewrites; " +
            $"zero tail: {zeroTail} ({lastPart}, {killedLength} bytes); check failed: {tornTail}; backend {backend}");
        if (expectZeroTail && !rewrites && backend != "portable") // (with rewrites the kill may follow a switch to a new file before its first fill)
        {
            Assert.True(zeroTail, "no zeros past the last record: the tail was not prepared ahead");
        }

        if (expectNoZeroTail)
        {
            Assert.False(zeroTail, "zeros past the last record: the tail was prepared ahead although turned off");
        }

        // The restart runs without the 16 KiB rewrite threshold: like Redis 7 (loadAppendOnlyFiles sets the rewrite base
        // size to the base file's size only), a server restarted on a large incremental file rewrites at its first cron
        // tick, and that rewrite removes the very file the checks below read (ci85: the last part was gone between
        // two reads after the restart). Rewrites under load are what the killed run tested.
        // The restart prepares no zero tail of its own (EIOSHARP_KV_ALWAYS_ZERO_TAIL=0; under always the default since §210
        // fills a chunk at once), so that the file read below is what the loader left.
        string[] restartArgs = ["--appendfsync", fsync];
        using (var server = KvServerProcess.StartIn(dir.DataDir, new Dictionary<string, string?> { ["EIOSHARP_KV_ALWAYS_ZERO_TAIL"] = "0" }, restartArgs))
        {
            if (zeroTail)
            {
                Assert.Contains("zero bytes after its last command", server.Log);
                Assert.Contains("!!! Truncating the AOF", server.Log);
                Assert.False(EndsInZero(lastPart), "the zero tail is still there after the restart");
                Assert.True(new FileInfo(lastPart).Length < killedLength);
                var checkedAfterStart = CheckAof(dir.AofPath); // nothing appended yet: the file is cut to its last record
                Assert.True(checkedAfterStart.ExitCode == 0, checkedAfterStart.Output);
            }
            else if (tornTail)
            {
                Assert.Contains("torn write", server.Log);
                Assert.Contains("truncating it from", server.Log);
            }

            using var c = new RespClient(server.Port);
            var missing = new List<string>();
            foreach (var chunk in acked.Keys.Chunk(200))
            {
                string reply = c.Call(["MGET", .. chunk]);
                var values = reply[2..^1].Split(',');
                for (int i = 0; i < chunk.Length; i++)
                {
                    if (values[i] != "$" + acked[chunk[i]])
                    {
                        missing.Add($"{chunk[i]}={values[i]}");
                    }
                }
            }

            Assert.True(missing.Count == 0, $"{missing.Count} of {acked.Count} acknowledged writes lost: {string.Join(' ', missing.Take(10))}");
            foreach (var (w, last) in lastCounter)
            {
                long now = long.Parse(c.Call("GET", $"counter:{w}").AsSpan(1), CultureInfo.InvariantCulture);
                Assert.InRange(now, last, last + 1); // at most the one unacknowledged INCR in flight
            }

            Assert.Equal(0, server.Terminate());
        }

        var check = CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
    }

    private static bool EndsInZero(string path)
    {
        using var f = File.OpenRead(path);
        if (f.Length == 0)
        {
            return false;
        }

        f.Seek(-1, SeekOrigin.End);
        return f.ReadByte() == 0;
    }

    [Fact]
    public void A_torn_tail_written_by_hand_is_truncated_with_a_warning()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.DataDir);
        byte[] valid = [.. Resp("SET", "a", "1"), .. Resp("SET", "b", "22"), .. Resp("PEXPIREAT", "b", "99999999999999")];
        byte[] torn = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal");
        File.WriteAllBytes(dir.AofPath, [.. valid, .. torn]);
        Assert.NotEqual(0, CheckAof(dir.AofPath).ExitCode);

        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            Assert.Contains($"truncating it from {valid.Length + torn.Length} to {valid.Length} bytes", server.Log);
            Assert.Contains("WARNING", server.Log);
            Assert.Equal("\"1\"", Cli(server.Port, "GET", "a"));
            Assert.Equal("\"22\"", Cli(server.Port, "GET", "b"));
            Assert.Equal("(integer) 0", Cli(server.Port, "EXISTS", "c"));
            Assert.Equal(valid.Length, new FileInfo(AofFiles.BasePart(dir.DataDir)).Length); // upgraded into appendonlydir as the base
            Assert.Equal("OK", Cli(server.Port, "SET", "c", "after"));
            Assert.Equal(0, server.Terminate());
        }

        var check = CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            Assert.DoesNotContain("truncating", server.Log);
            Assert.Equal("\"after\"", Cli(server.Port, "GET", "c"));
        }
    }

    [Fact]
    public void Corruption_in_the_middle_refuses_to_start_and_names_the_offset()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.DataDir);
        byte[] first = Resp("SET", "a", "1");
        byte[] bad = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nXYZ\r\n"); // bulk longer than announced
        byte[] last = Resp("SET", "c", "3");
        File.WriteAllBytes(dir.AofPath, [.. first, .. bad, .. last]);
        long sizeBefore = new FileInfo(dir.AofPath).Length;

        var (exit, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, exit);
        Assert.Contains($"offset {first.Length}", output);
        Assert.Contains("Refusing to start", output);
        Assert.DoesNotContain("ready: listening", output);
        Assert.Equal(sizeBefore, new FileInfo(AofFiles.BasePart(dir.DataDir)).Length); // not "repaired" behind the user's back (moved into appendonlydir as its base)

        // Garbage that is not RESP at all, in the middle.
        File.WriteAllBytes(AofFiles.BasePart(dir.DataDir), [.. first, .. Encoding.ASCII.GetBytes("garbage line\r\n"), .. last]);
        (exit, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, exit);
        Assert.Contains($"offset {first.Length}", output);
    }

    [Fact]
    public void Relative_expiries_are_logged_as_absolute_times()
    {
        using var dir = new TempDir();
        var clock = new System.Diagnostics.Stopwatch(); // the TTLs below may have lost every second since the first SET
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            int p = server.Port;
            clock.Start();
            Assert.Equal("OK", Cli(p, "SET", "ex:long", "v", "EX", "1000"));
            Assert.Equal("OK", Cli(p, "SETEX", "ex:setex", "1000", "v"));
            Assert.Equal("OK", Cli(p, "SET", "ex:short", "v", "PX", "300"));
            Assert.Equal("OK", Cli(p, "SET", "ex:persisted", "v", "EX", "1000"));
            Assert.Equal("(integer) 1", Cli(p, "PERSIST", "ex:persisted"));
            Assert.Equal("(integer) 1", Cli(p, "INCR", "ex:counter"));
            Assert.Equal("(integer) 1", Cli(p, "EXPIRE", "ex:counter", "1000"));
            Assert.Equal(0, server.Terminate());
        }

        string aof = dir.AofText;
        Assert.DoesNotContain("\r\nEX\r\n", aof, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\r\nSETEX\r\n", aof, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("$6\r\nEXPIRE\r\n", aof, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, CheckAof(dir.AofPath).ExitCode);
        Thread.Sleep(400); // ex:short is past its (absolute) expiry when replayed
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            int p = server.Port;
            long[] ttls = [.. new[] { "ex:long", "ex:setex", "ex:counter" }.Select(k => long.Parse(Cli(p, "TTL", k).Split(' ')[1], CultureInfo.InvariantCulture))];
            long low = 999 - (long)clock.Elapsed.TotalSeconds; // read after the TTLs: none can be below it
            Assert.All(ttls, ttl => Assert.InRange(ttl, low, 1000));
            Assert.Equal("(integer) -1", Cli(p, "TTL", "ex:persisted"));
            Assert.Equal("(integer) 0", Cli(p, "EXISTS", "ex:short"));
            Assert.Equal("\"1\"", Cli(p, "GET", "ex:counter"));
        }
    }

    [Theory]
    [InlineData("everysec")]
    [InlineData("always")]
    public void SIGTERM_with_connected_clients_exits_cleanly_with_the_data_in_the_aof(string fsync)
    {
        using var dir = new TempDir();
        int acknowledged = 0;
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", fsync))
        {
            using var idle = new RespClient(server.Port);
            Assert.Equal("+PONG", idle.Call("PING"));
            using var writer = new RespClient(server.Port);
            Assert.Equal("+OK", writer.Call("SET", "before", "1"));
            using var busy = new RespClient(server.Port, timeoutMs: 15_000);
            var pipeline = new MemoryStream();
            for (int i = 0; i < 20_000; i++)
            {
                pipeline.Write(Resp("SET", $"pipe:{i}", S(i)));
            }

            pipeline.Write(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$4\r\nhalf")); // and a command cut in the middle
            var sender = new Thread(() =>
            {
                try
                {
                    busy.Send(pipeline.ToArray());
                }
                catch (System.Net.Sockets.SocketException)
                {
                }
            });
            sender.Start();
            Assert.Equal("+OK", busy.ReadReply()); // the pipeline is being served
            acknowledged = 1;
            var sw = Stopwatch.StartNew();
            int exit = server.Terminate();
            Assert.Equal(0, exit);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"shutdown took {sw.Elapsed}");
            Assert.Contains("Shutting down", server.Log);
            Assert.Contains("EioSharp.Kv stopped", server.Log);
            try
            {
                while (busy.ReadReply() == "+OK")
                {
                    acknowledged++;
                }
            }
            catch (Exception e) when (e is EndOfStreamException or System.Net.Sockets.SocketException or IOException)
            {
            }

            sender.Join(TimeSpan.FromSeconds(10));
        }

        var check = CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal("$1", c.Call("GET", "before"));
            int stored = int.Parse(c.Call("DBSIZE").AsSpan(1), CultureInfo.InvariantCulture) - 1;
            Assert.True(stored >= acknowledged, $"{acknowledged} pipelined SETs acknowledged but {stored} stored");
            Assert.Equal("$" + S(acknowledged - 1), c.Call("GET", $"pipe:{acknowledged - 1}"));
            Assert.Equal(":0", c.Call("EXISTS", "half"));
        }
    }

    [Fact]
    public void A_round_whose_log_is_written_in_pieces_is_logged_whole_in_order_and_before_its_replies()
    {
        // Under everysec the store writes a round's AOF bytes as soon as 128 KiB are pending (rationale: "A large
        // round's AOF bytes are written as the round is applied"). A 200 KB SET crosses that threshold on its own, so
        // this one pipelined write makes the round write early at least once, then keep appending. SIGKILL right
        // after the last reply: the page cache survives a killed process, so every acknowledged write must replay,
        // once (a piece written twice would double the INCRs) and in order (the last SET of "big" wins, "gone" stays
        // deleted).
        using var dir = new TempDir();
        string v1 = new('a', 200_000), v2 = new('b', 150_000), v3 = new('c', 300_000);
        var pipeline = new MemoryStream();
        pipeline.Write(Resp("SET", "big", v1));
        pipeline.Write(Resp("SET", "gone", v3));
        for (int i = 0; i < 100; i++)
        {
            pipeline.Write(Resp("INCR", "n"));
            pipeline.Write(Resp("RPUSH", "order", S(i)));
        }

        pipeline.Write(Resp("MULTI"));
        pipeline.Write(Resp("SET", "tx", v2));
        pipeline.Write(Resp("INCRBY", "n", "1000"));
        pipeline.Write(Resp("EXEC"));
        pipeline.Write(Resp("SET", "big", v2));
        pipeline.Write(Resp("DEL", "gone"));
        pipeline.Write(Resp("INCR", "n"));
        int replies = 2 + 200 + 4 + 3;
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "everysec"))
        {
            using var c = new RespClient(server.Port, timeoutMs: 30_000);
            c.Send(pipeline.ToArray());
            var got = new List<string>();
            for (int i = 0; i < replies; i++)
            {
                got.Add(c.ReadReply());
            }

            Assert.Equal("+OK", got[0]);
            Assert.Equal(":1", got[2]);
            Assert.Equal(":100", got[200]);
            Assert.Equal("+QUEUED", got[204]);
            Assert.StartsWith("*[", got[205]);
            Assert.Equal(":1", got[207]);
            Assert.Equal(":1101", got[208]);
            server.Kill();
        }

        // The killed server's incremental file ends in its mapped tail's zeros (session 28), which redis-check-aof calls a
        // format error: the restart cuts them, and the file is checked then (nothing is appended by the reads below).
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            var check = CheckAof(dir.AofPath);
            Assert.True(check.ExitCode == 0, check.Output);
            using var c = new RespClient(server.Port, timeoutMs: 30_000);
            Assert.Equal("$1101", c.Call("GET", "n"));
            Assert.Equal("$" + v2, c.Call("GET", "big"));
            Assert.Equal("$" + v2, c.Call("GET", "tx"));
            Assert.Equal(":0", c.Call("EXISTS", "gone"));
            Assert.Equal(":100", c.Call("LLEN", "order"));
            Assert.Equal("$0", c.Call("LINDEX", "order", "0"));
            Assert.Equal("$99", c.Call("LINDEX", "order", "-1"));
            Assert.Equal(":4", c.Call("DBSIZE")); // big, n, order, tx
        }
    }

    [Fact]
    public void SIGTERM_is_not_held_up_by_clients_that_stopped_reading()
    {
        using var server = KvServerProcess.Start();
        using (var c = new RespClient(server.Port))
        {
            Assert.Equal("+OK", c.Call("SET", "big", new string('b', 512 * 1024)));
        }

        // Pipelines whose replies (tens of MB) no one reads; the first keeps the store busy so that the others are
        // waiting for their batches when SIGTERM arrives: the replies of a committed batch are delivered at
        // shutdown, but only for a grace period.
        var clients = new List<RespClient>();
        try
        {
            foreach (int gets in new[] { 200, 60, 60, 60 })
            {
                var c = new RespClient(server.Port);
                clients.Add(c);
                c.Send(string.Concat(Enumerable.Repeat("GET big\r\n", gets)) + "SET after-gets 1\r\n");
            }

            Thread.Sleep(100);
            var sw = Stopwatch.StartNew();
            Assert.Equal(0, server.Terminate(TimeSpan.FromSeconds(60)));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"shutdown took {sw.Elapsed}");
            Assert.Contains("EioSharp.Kv stopped", server.Log);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public void Maxclients_refuses_the_client_over_the_limit()
    {
        using var server = KvServerProcess.Start("--maxclients", "2");
        using var a = new RespClient(server.Port);
        using var b = new RespClient(server.Port);
        Assert.Equal("+PONG", a.Call("PING"));
        Assert.Equal("+PONG", b.Call("PING"));
        using (var c = new RespClient(server.Port, timeoutMs: 5000))
        {
            string got = c.ReadToEnd(out bool closed);
            Assert.Equal("-ERR max number of clients reached\r\n", got);
            Assert.True(closed);
        }

        Assert.Equal("+PONG", a.Call("PING"));
        a.Dispose();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            using var d = new RespClient(server.Port, timeoutMs: 5000);
            d.SendCommand("PING");
            string got = d.ReadReply(); // +PONG, or the refusal while the server has not yet seen a's close
            if (got.StartsWith("+PONG", StringComparison.Ordinal) || deadline.Elapsed > TimeSpan.FromSeconds(5))
            {
                Assert.StartsWith("+PONG", got); // a slot freed up
                break;
            }

            Thread.Sleep(50);
        }

        // Asked on b, which holds a slot: a new client (redis-cli) may still be refused while the server has not yet seen
        // d's close (failed in a loaded CI run).
        string stats = b.Call("INFO", "stats");
        Assert.Matches(@"rejected_connections:[1-9]", stats);
    }

    [Fact]
    public void Aof_rewrite_compacts_the_log_and_the_data_survives_a_restart()
    {
        using var dir = new TempDir();
        string value = new('x', 200);
        long written = 0;
        var expireClock = new System.Diagnostics.Stopwatch();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--auto-aof-rewrite-min-size", "64kb", "--appendfsync", "everysec"))
        {
            using var c = new RespClient(server.Port);
            for (int round = 0; round < 10; round++)
            {
                var batch = new MemoryStream();
                for (int k = 0; k < 100; k++)
                {
                    batch.Write(Resp("SET", $"rw:{k}", $"{round}:{value}"));
                }

                batch.Write(Resp("INCRBY", "rw:counter", "7"));
                written += batch.Length;
                c.Send(batch.ToArray());
                for (int k = 0; k <= 100; k++)
                {
                    c.ReadReply();
                }
            }

            Assert.True(server.WaitForLog("Background AOF rewrite finished", TimeSpan.FromSeconds(15)), server.Log);
            string info = Cli(server.Port, ["--raw"], "INFO", "persistence");
            Assert.Matches(@"aof_rewrites:[1-9]", info);
            Assert.Matches(@"aof_current_size:[1-9]", info);
            Assert.Matches(@"aof_base_size:[1-9]", info);
            expireClock.Start(); // the TTL read after the restart may have lost every second since this EXPIRE
            Assert.Equal(":1", c.Call("EXPIRE", "rw:0", "1000"));
            Assert.Equal("+OK", c.Call("SET", "rw:after", "1"));
            Assert.Equal(0, server.Terminate());
        }

        long size = new FileInfo(dir.AofPath).Length;
        Assert.True(size < written, $"the rewritten AOF ({size} bytes) should be smaller than what was written ({written} bytes)");
        var check = CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal(":102", c.Call("DBSIZE"));
            for (int k = 0; k < 100; k++)
            {
                Assert.Equal($"$9:{value}", c.Call("GET", $"rw:{k}"));
            }

            Assert.Equal("$70", c.Call("GET", "rw:counter"));
            Assert.Equal("$1", c.Call("GET", "rw:after"));
            long ttl = long.Parse(c.Call("TTL", "rw:0").AsSpan(1), CultureInfo.InvariantCulture);
            Assert.InRange(ttl, 999 - (long)expireClock.Elapsed.TotalSeconds, 1000); // read after the TTL: none can be below it
        }
    }

    /// <summary>The rewrite runs in a fiber on the store owner run's switch (issue 14): a shutdown while it is writing
    /// cancels it between chunks, the temporary file is removed, and the old AOF (synced) keeps every write. (Whether the
    /// shutdown lands mid-rewrite depends on timing; either way nothing may be left behind or lost.)</summary>
    [Fact]
    public void Shutdown_during_an_aof_rewrite_leaves_no_temporary_file_and_loses_nothing()
    {
        using var dir = new TempDir();
        string value = new('y', 200);
        const int Keys = 40_000;
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "no", "--auto-aof-rewrite-percentage", "0"))
        {
            using var c = new RespClient(server.Port);
            for (int start = 0; start < Keys; start += 1000)
            {
                var batch = new MemoryStream();
                for (int k = start; k < start + 1000; k++)
                {
                    batch.Write(Resp("SET", $"sd:{k}", value));
                }

                c.Send(batch.ToArray());
                for (int k = 0; k < 1000; k++)
                {
                    c.ReadReply();
                }
            }

            Assert.Equal("+Background append only file rewriting started", c.Call("BGREWRITEAOF"));
            Assert.True(server.WaitForLog("rewriting started (", TimeSpan.FromSeconds(15)), server.Log);
            Assert.Equal(0, server.Terminate());
            Assert.Contains("the append-only file is synced", server.Log);
        }

        Assert.Empty(Directory.GetFiles(dir.DataDir, "*.rewrite.tmp"));
        var check = CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal($":{Keys}", c.Call("DBSIZE"));
            Assert.Equal($"${value}", c.Call("GET", "sd:39999"));
        }
    }
}
