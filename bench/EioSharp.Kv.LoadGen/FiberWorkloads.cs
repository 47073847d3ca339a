using System.Diagnostics;
using System.Globalization;
using EioSharp.Sync;

namespace EioSharp.Kv.LoadGen;

/// <summary>
/// The ping-pong and stream workloads with <c>--client eio</c> (the default): the same clients, commands, blocking and
/// reply checks as <c>--client threads</c>, each client a fiber of one EioSharp domain (io_uring where the kernel allows it,
/// with the KV server's write-behind sends and poll-first receives) instead of a thread blocked in <c>recv(2)</c>, and the
/// replies checked in place (no strings or lists per reply). Session 32 (h184): the thread-per-client generator used as
/// much CPU per stream message as either server; see docs/BENCHMARKS.md.
/// </summary>
internal static class FiberWorkloads
{
    private static EioOptions Eio => new()
    {
        Backend = EioBackend.Auto,
        BackendOptions = new EioBackendOptions { UringWriteBehind = true, UringRecvPollFirst = true },
    };

    public static (TimeSpan Elapsed, double CpuUs) PingPong(string host, int port, int rounds, string ping, string pong)
    {
        byte[] pushPing = RespConnection.Encode("LPUSH", ping, "x");
        byte[] popPong = RespConnection.Encode("BLPOP", pong, "0");
        byte[] pushPong = RespConnection.Encode("LPUSH", pong, "x");
        byte[] popPing = RespConnection.Encode("BLPOP", ping, "0");
        // A BLPOP reply is a two-element array of bulk strings, the key and the value: the same bytes as a command.
        byte[] poppedPing = RespConnection.Encode(ping, "x");
        byte[] poppedPong = RespConnection.Encode(pong, "x");
        TimeSpan elapsed = default, cpu = default;
        EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var a = await FiberRespConnection.ConnectAsync(env, sw, host, port);
            var b = await FiberRespConnection.ConnectAsync(env, sw, host, port);
            // A push is sent only after the other client's pop of that list was sent (a token per pop): every pop is
            // written to the server before the push that serves it, in the same order for both servers. (With a thread
            // per client the two sends of a phase raced: the pop blocked in ~1.6-1.7 of the 2 phases, h181.)
            var pingPopSent = new AsyncQueue<bool>(AsyncQueue<bool>.Unbounded);
            var pongPopSent = new AsyncQueue<bool>(AsyncQueue<bool>.Unbounded);
            var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            await Fiber.BothAsync(
                async () =>
                {
                    for (int i = 0; i < rounds; i++)
                    {
                        await pingPopSent.TakeAsync();
                        a.Append(pushPing);
                        await a.SendAsync();
                        await a.NextFrameAsync();
                        RespFrames.Integer(a.Frame);
                        a.Append(popPong);
                        await a.SendAsync();
                        pongPopSent.TryAdd(true);
                        await a.NextFrameAsync();
                        ExpectFrame(a.Frame, poppedPong, "BLPOP");
                    }
                },
                async () =>
                {
                    for (int i = 0; i < rounds; i++)
                    {
                        b.Append(popPing);
                        await b.SendAsync();
                        pingPopSent.TryAdd(true);
                        await b.NextFrameAsync();
                        ExpectFrame(b.Frame, poppedPing, "BLPOP");
                        await pongPopSent.TakeAsync();
                        b.Append(pushPong);
                        await b.SendAsync();
                        await b.NextFrameAsync();
                        RespFrames.Integer(b.Frame);
                    }
                });
            elapsed = clock.Elapsed;
            cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuStart;
            a.Close();
            b.Close();
        }), Eio);
        return (elapsed, cpu.TotalMicroseconds);
    }

    public static (TimeSpan Elapsed, double CpuUs, long Reads) Stream(string host, int port, int messages, int producers,
        int consumers, int count, string key)
    {
        byte[] keyBytes = System.Text.Encoding.UTF8.GetBytes(key);
        byte[] xadd = RespConnection.Encode("XADD", key, "*", "job", "payload-0123456789");
        long acked = 0, done = 0, reads = 0;
        TimeSpan cpu = default;
        EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var setup = await FiberRespConnection.ConnectAsync(env, sw, host, port);
            setup.Append(RespConnection.Encode("XGROUP", "CREATE", key, "g", "$", "MKSTREAM"));
            await setup.SendAsync();
            await setup.NextFrameAsync();
            ExpectFrame(setup.Frame, "+OK\r\n"u8, "XGROUP CREATE");
            setup.Close();

            var producerConnections = new FiberRespConnection[producers];
            var consumerConnections = new FiberRespConnection[consumers];
            for (int p = 0; p < producers; p++)
            {
                producerConnections[p] = await FiberRespConnection.ConnectAsync(env, sw, host, port);
            }

            for (int k = 0; k < consumers; k++)
            {
                consumerConnections[k] = await FiberRespConnection.ConnectAsync(env, sw, host, port);
            }

            var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var clients = new List<Func<Task>>();
            for (int p = 0; p < producers; p++)
            {
                var c = producerConnections[p];
                int share = messages / producers + (p < messages % producers ? 1 : 0);
                clients.Add(async () =>
                {
                    for (int i = 0; i < share; i++)
                    {
                        c.Append(xadd);
                        await c.SendAsync();
                        await c.NextFrameAsync();
                        if (RespFrames.ThrowIfError(c.Frame)[0] != (byte)'$' || c.Frame[1] == (byte)'-')
                        {
                            throw new InvalidDataException("unexpected XADD reply");
                        }
                    }
                });
            }

            for (int k = 0; k < consumers; k++)
            {
                var c = consumerConnections[k];
                byte[] read = RespConnection.Encode("XREADGROUP", "GROUP", "g", "c" + k.ToString(CultureInfo.InvariantCulture),
                    "COUNT", count.ToString(CultureInfo.InvariantCulture), "BLOCK", "1000", "STREAMS", key, ">");
                clients.Add(async () =>
                {
                    while (acked < messages)
                    {
                        c.Append(read);
                        await c.SendAsync();
                        await c.NextFrameAsync();
                        int entries = AppendAck(c, keyBytes);
                        if (entries < 0)
                        {
                            continue; // BLOCK timed out (nil)
                        }

                        reads++;
                        await c.SendAsync();
                        await c.NextFrameAsync();
                        long n = RespFrames.Integer(c.Frame);
                        if (n != entries)
                        {
                            throw new InvalidDataException($"XACK acknowledged {n} of {entries}");
                        }

                        if ((acked += n) == messages)
                        {
                            done = clock.Elapsed.Ticks;
                        }
                    }
                });
            }

            await Fiber.AllAsync(clients);
            cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuStart;
            foreach (var c in producerConnections.Concat(consumerConnections))
            {
                c.Close();
            }
        }), Eio);
        return (TimeSpan.FromTicks(done), cpu.TotalMicroseconds, reads);
    }

    /// <summary>
    /// Reads the XREADGROUP reply in <paramref name="c"/>'s frame (<c>*1 [*2 [key, *n [*2 [id, fields]] ...]]</c>, or nil
    /// when BLOCK timed out) and appends <c>XACK key g id...</c> for its entries; returns the entries' count, -1 for nil.
    /// </summary>
    private static int AppendAck(FiberRespConnection c, ReadOnlySpan<byte> key)
    {
        var f = RespFrames.ThrowIfError(c.Frame);
        if (f.SequenceEqual("*-1\r\n"u8) || f.SequenceEqual("$-1\r\n"u8))
        {
            return -1;
        }

        int pos = 0;
        if (RespFrames.Header(f, ref pos, (byte)'*') != 1 || RespFrames.Header(f, ref pos, (byte)'*') != 2
            || !RespFrames.Bulk(f, ref pos).SequenceEqual(key))
        {
            throw new InvalidDataException("unexpected XREADGROUP reply");
        }

        int entries = (int)RespFrames.Header(f, ref pos, (byte)'*');
        c.AppendHeader((byte)'*', 3 + entries);
        c.AppendBulk("XACK"u8);
        c.AppendBulk(key);
        c.AppendBulk("g"u8);
        for (int i = 0; i < entries; i++)
        {
            if (RespFrames.Header(f, ref pos, (byte)'*') != 2)
            {
                throw new InvalidDataException("unexpected stream entry");
            }

            c.AppendBulk(RespFrames.Bulk(f, ref pos));
            if (!RespFrames.TrySkip(f, ref pos))
            {
                throw new InvalidDataException("a stream entry's fields cut short");
            }
        }

        return entries;
    }

    private static void ExpectFrame(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> expected, string command)
    {
        if (!RespFrames.ThrowIfError(frame).SequenceEqual(expected))
        {
            throw new InvalidDataException($"unexpected {command} reply");
        }
    }
}
