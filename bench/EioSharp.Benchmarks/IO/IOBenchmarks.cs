using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using EioSharp.IO;

namespace EioSharp.Benchmarks.IO;

/// <summary>The byte-at-a-time job: 2 warmups, 6 measured iterations, one process; with <c>EIOSHARP_BENCH_JOB=cli</c> none, so
/// that only the job given on the command line runs (e.g. <c>--inProcess</c>, when BenchmarkDotNet cannot build its
/// out-of-process boilerplate project on this host), as <see cref="CoreBenchConfig"/>.</summary>
public sealed class IOBenchConfig : ManualConfig
{
    public IOBenchConfig()
    {
        if (Environment.GetEnvironmentVariable("EIOSHARP_BENCH_JOB") != "cli")
        {
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(6));
        }
    }
}

/// <summary>Shared 100 MB inputs (built once per process).</summary>
internal static class IOData
{
    public const int Size = 100 * 1024 * 1024;

    /// <summary>100 MB of printable ASCII.</summary>
    public static readonly Lazy<byte[]> Letters = new(() =>
    {
        var data = new byte[Size];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)('a' + (i % 26));
        }

        return data;
    });

    /// <summary>100 MB of short lines ("key-NNNNN value\n", 16 bytes on average).</summary>
    public static readonly Lazy<byte[]> Lines = new(() =>
    {
        var data = new byte[Size];
        int pos = 0;
        int n = 0;
        while (true)
        {
            var line = Encoding.ASCII.GetBytes($"key-{n++ % 100000} value\n");
            if (pos + line.Length > data.Length)
            {
                data.AsSpan(pos).Fill((byte)'x');
                data[^1] = (byte)'\n';
                break;
            }

            line.CopyTo(data, pos);
            pos += line.Length;
        }

        return data;
    });
}

/// <summary>Reading 100 MB one byte at a time (Eio's <c>Buf_read.any_char</c> benchmark: 0.40 s per 100 MB in OCaml).</summary>
[Config(typeof(IOBenchConfig))]
[MemoryDiagnoser]
[MedianColumn]
public class IOAnyCharBenchmarks
{
    private byte[] _data = null!;

    [GlobalSetup]
    public void Setup() => _data = IOData.Letters.Value;

    [Benchmark(Baseline = true, Description = "PipeReader + SequenceReader<byte>.TryRead")]
    public async Task<long> PipeReaderSequenceReader()
    {
        var reader = PipeReader.Create(new MemoryStream(_data), new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        long sum = 0;
        while (true)
        {
            var result = await reader.ReadAsync();
            sum += SumBytes(result.Buffer);
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await reader.CompleteAsync();
        return sum;
    }

    private static long SumBytes(ReadOnlySequence<byte> buffer)
    {
        var seq = new SequenceReader<byte>(buffer);
        long sum = 0;
        while (seq.TryRead(out byte b))
        {
            sum += b;
        }

        return sum;
    }

    [Benchmark(Description = "StreamReader.Read()")]
    public long StreamReaderRead()
    {
        using var reader = new StreamReader(new MemoryStream(_data), Encoding.ASCII, false, 64 * 1024);
        long sum = 0;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            sum += c;
        }

        return sum;
    }

    [Benchmark(Description = "BufferedReader.AnyCharAsync")]
    public long BufferedReaderAnyChar() => EioMain.Run(async _ =>
    {
        var r = new BufferedReader(new BufferSource(_data), maxSize: 1024 * 1024, initialSize: 64 * 1024);
        long sum = 0;
        for (int i = 0; i < IOData.Size; i++)
        {
            sum += await r.AnyCharAsync();
        }

        return sum;
    });

    /// <summary>The same loop awaiting, per byte, an awaitable that is always complete and reads nothing (<see cref="ReadyByte"/>):
    /// what the caller's async state machine alone costs per awaited byte, the lower bound of any awaited per-byte API.</summary>
    [Benchmark(Description = "await of an always-complete awaitable (floor)")]
    public long AwaitCompletedFloor() => EioMain.Run(async _ =>
    {
        var ready = new ReadyByte();
        long sum = 0;
        for (int i = 0; i < IOData.Size; i++)
        {
            sum += await ready;
        }

        return sum;
    });

    /// <summary>The floor with the type <c>AnyCharAsync</c> returns: a completed <see cref="ValueTask{TResult}"/> per byte,
    /// built from a field (no reading).</summary>
    [Benchmark(Description = "await of a completed ValueTask<byte> (floor)")]
    public long AwaitCompletedValueTaskFloor() => EioMain.Run(async _ =>
    {
        var ready = new ReadyByte();
        long sum = 0;
        for (int i = 0; i < IOData.Size; i++)
        {
            sum += await ready.AsValueTask();
        }

        return sum;
    });

    /// <summary>The floor plus what consuming input needs at the least: each await's <c>GetResult</c> increments a position
    /// field of the awaited object (<see cref="CountingByte"/>), as a reader advances its buffer position.</summary>
    [Benchmark(Description = "await of an always-complete awaitable that advances a position (floor)")]
    public long AwaitCountingFloor() => EioMain.Run(async _ =>
    {
        var counter = new CountingByte();
        long sum = 0;
        for (int i = 0; i < IOData.Size; i++)
        {
            sum += await counter;
        }

        return sum;
    });

    /// <summary><see cref="AwaitCountingFloor"/>'s work in a synchronous loop: the same position increments, no await.</summary>
    [Benchmark(Description = "the same position increments without await")]
    public long SyncCountingLoop()
    {
        var counter = new CountingByte();
        long sum = 0;
        for (int i = 0; i < IOData.Size; i++)
        {
            sum += counter.GetResult();
        }

        return sum;
    }

    [Benchmark(Description = "BufferedReader.TryAnyChar + FillAsync")]
    public long BufferedReaderTryAnyChar() => EioMain.Run(async _ =>
    {
        var r = new BufferedReader(new BufferSource(_data), maxSize: 1024 * 1024, initialSize: 64 * 1024);
        long sum = 0;
        while (true)
        {
            sum += SumBuffered(r);
            if (!await r.FillAsync())
            {
                break;
            }
        }

        return sum;
    });

    // The synchronous part in a method of its own, as the baseline's SumBytes: no async state machine per byte.
    private static long SumBuffered(BufferedReader r)
    {
        long sum = 0;
        while (r.TryAnyChar(out byte b))
        {
            sum += b;
        }

        return sum;
    }
}

/// <summary>An awaitable that is always complete and yields a byte from a field: its <c>IsCompleted</c> and <c>GetResult</c>
/// read one field each (so the JIT cannot fold the suspension path away), as a library's fast path at its cheapest.</summary>
public sealed class ReadyByte : System.Runtime.CompilerServices.ICriticalNotifyCompletion
{
    private readonly bool _ready = true;
    private readonly byte _value = 1;

    public ReadyByte GetAwaiter() => this;

    public bool IsCompleted => _ready;

    public byte GetResult() => _value;

    public ValueTask<byte> AsValueTask() => new(_value);

    public void OnCompleted(Action continuation) => throw new NotSupportedException("Always complete.");

    public void UnsafeOnCompleted(Action continuation) => throw new NotSupportedException("Always complete.");
}

/// <summary>An always-complete awaitable whose <c>GetResult</c> advances a position field and returns its low byte.</summary>
public sealed class CountingByte : System.Runtime.CompilerServices.ICriticalNotifyCompletion
{
    private readonly bool _ready = true;
    private int _position;

    public CountingByte GetAwaiter() => this;

    public bool IsCompleted => _ready;

    public byte GetResult() => (byte)_position++;

    public void OnCompleted(Action continuation) => throw new NotSupportedException("Always complete.");

    public void UnsafeOnCompleted(Action continuation) => throw new NotSupportedException("Always complete.");
}

/// <summary>Splitting 100 MB of short lines.</summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser]
[MedianColumn]
public class IOReadLineBenchmarks
{
    private byte[] _data = null!;

    [GlobalSetup]
    public void Setup() => _data = IOData.Lines.Value;

    [Benchmark(Baseline = true, Description = "PipeReader + SequenceReader.TryReadTo (span)")]
    public Task<long> PipeReaderLines() => PipeLines(decode: false);

    [Benchmark(Description = "PipeReader + SequenceReader.TryReadTo + string")]
    public Task<long> PipeReaderLineStrings() => PipeLines(decode: true);

    private async Task<long> PipeLines(bool decode)
    {
        var reader = PipeReader.Create(new MemoryStream(_data), new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        long total = 0;
        while (true)
        {
            var result = await reader.ReadAsync();
            var buffer = result.Buffer;
            total += SplitLines(ref buffer, decode);
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await reader.CompleteAsync();
        return total;
    }

    private static long SplitLines(ref ReadOnlySequence<byte> buffer, bool decode)
    {
        var seq = new SequenceReader<byte>(buffer);
        long total = 0;
        while (seq.TryReadTo(out ReadOnlySpan<byte> line, (byte)'\n'))
        {
            total += decode ? Encoding.UTF8.GetString(line).Length : line.Length;
        }

        buffer = buffer.Slice(seq.Position);
        return total;
    }

    [Benchmark(Description = "BufferedReader.ReadLineAsync (string)")]
    public long BufferedReaderReadLine() => EioMain.Run(async _ =>
    {
        var r = new BufferedReader(new BufferSource(_data), maxSize: 1024 * 1024, initialSize: 64 * 1024);
        long total = 0;
        while (!await r.AtEndOfInputAsync())
        {
            total += (await r.ReadLineAsync()).Length;
        }

        return total;
    });

    [Benchmark(Description = "BufferedReader.TryReadLine + FillAsync (span)")]
    public long BufferedReaderTryReadLine() => EioMain.Run(async _ =>
    {
        var r = new BufferedReader(new BufferSource(_data), maxSize: 1024 * 1024, initialSize: 64 * 1024);
        long total = 0;
        while (true)
        {
            total += CountLines(r);
            if (!await r.FillAsync())
            {
                total += CountLines(r);
                return total;
            }
        }
    });

    private static long CountLines(BufferedReader r)
    {
        long total = 0;
        while (r.TryReadLine(out var line))
        {
            total += line.Length;
        }

        return total;
    }
}
