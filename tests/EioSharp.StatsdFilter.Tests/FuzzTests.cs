using System.Text;

namespace EioSharp.StatsdFilter.Tests;

/// <summary>Deterministic fuzzing of the splitter, framer, parser and rules (fixed seed).</summary>
public class FuzzTests
{
    private const int Iterations = 120_000;
    private const int FramerMaxLine = 48;

    private static readonly string[] Seeds =
    [
        "page.views:1|c",
        "fuel.level:-0.5|g|@0.5",
        "req.time:1:2:3|ms|#env:prod,region:eu",
        "song.length:240|h|@1|#a,b:c|c:container|T1656581400",
        "users.uniques:alice|s",
        "lat:1e3|d|x:ext",
        "_e{5,4}:title|text|d:1|h:host|#env:prod",
        "_sc|db.up|2|h:host|#env:prod|m:down | badly",
        "a:1|c\r\nb:2|g\n\n",
    ];

    private static readonly byte[] Interesting = Encoding.ASCII.GetBytes(":|@#,\n\r{}_e.+-0123456789TcgmhsdE ");

    [Fact]
    public void Parser_splitter_framer_and_rules_never_throw_and_agree()
    {
        var random = new Random(20240601);
        FilterRules rules = FilterRules.Parse("page.*,regex:re[qs]\\.,tag:env:prod,tag:a,!regex:.*,exact.name");
        FilterRules allow = FilterRules.Parse("!page.*,!tag:region");
        var framer = new StatsdTcpLineFramer(FramerMaxLine, receiveSize: 32);
        long parsed = 0;
        long malformed = 0;
        var buffer = new List<byte>();
        for (int iteration = 0; iteration < Iterations; iteration++)
        {
            byte[] input = Generate(random, buffer);
            foreach (ReadOnlySpan<byte> line in StatsdLineSplitter.SplitDatagram(input))
            {
                Assert.True(line.Length > 0);
                Assert.False(line.Contains((byte)'\n'));
                if (StatsdLine.TryParse(line, out StatsdLineInfo info, out StatsdParseError error))
                {
                    parsed++;
                    Assert.Equal(StatsdParseError.None, error);
                    Assert.True(info.Line == line);
                    Assert.True(info.Name.Length > 0);
                    Assert.True(info.Name.Overlaps(line));
                    Assert.True(info.SampleRate > 0 && info.SampleRate <= 1);
                    foreach (StatsdTag tag in info.GetTags())
                    {
                        Assert.True(tag.Raw.Length > 0);
                    }

                    _ = rules.ShouldDrop(in info);
                    _ = allow.ShouldDrop(in info);
                }
                else
                {
                    malformed++;
                    Assert.NotEqual(StatsdParseError.None, error);
                    Assert.Equal(StatsdLineKind.None, info.Kind);
                }
            }

            CheckFramer(framer, input, random);
        }

        // The generator must exercise both outcomes substantially.
        Assert.True(parsed > Iterations / 4, $"parsed {parsed}");
        Assert.True(malformed > Iterations / 4, $"malformed {malformed}");
    }

    private static byte[] Generate(Random random, List<byte> buffer)
    {
        buffer.Clear();
        int lines = random.Next(1, 4);
        for (int i = 0; i < lines; i++)
        {
            if (i > 0)
            {
                buffer.AddRange(random.Next(4) == 0 ? "\r\n"u8.ToArray() : "\n"u8.ToArray());
            }

            if (random.Next(10) == 0)
            {
                // Pure noise.
                int length = random.Next(0, 80);
                for (int j = 0; j < length; j++)
                {
                    buffer.Add(random.Next(3) == 0 ? Interesting[random.Next(Interesting.Length)] : (byte)random.Next(256));
                }
            }
            else
            {
                buffer.AddRange(Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]));
            }
        }

        int mutations = random.Next(0, 4);
        for (int m = 0; m < mutations && buffer.Count > 0; m++)
        {
            int at = random.Next(buffer.Count);
            switch (random.Next(5))
            {
                case 0:
                    buffer[at] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 1:
                    buffer.RemoveAt(at);
                    break;
                case 2:
                    buffer.Insert(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 3:
                    buffer[at] = (byte)random.Next(256);
                    break;
                default:
                    int count = Math.Min(random.Next(1, 10), buffer.Count - at);
                    buffer.InsertRange(random.Next(buffer.Count), buffer.GetRange(at, count));
                    break;
            }
        }

        return [.. buffer];
    }

    /// <summary>The framer must return exactly the reference lines, whatever the chunking.</summary>
    private static void CheckFramer(StatsdTcpLineFramer framer, byte[] input, Random random)
    {
        var expected = new List<string>();
        long expectedTruncated = 0;
        int start = 0;
        while (start < input.Length)
        {
            int newline = Array.IndexOf(input, (byte)'\n', start);
            int end = newline < 0 ? input.Length : newline;
            ReadOnlySpan<byte> raw = input.AsSpan(start, end - start);
            if (raw.Length > FramerMaxLine)
            {
                expectedTruncated++;
            }
            else
            {
                raw = StatsdLineSplitter.TrimCarriageReturn(raw);
                if (raw.Length > 0)
                {
                    expected.Add(Convert.ToHexString(raw));
                }
            }

            start = end + 1;
        }

        long truncatedBefore = framer.TruncatedLines;
        var actual = new List<string>();
        int offset = 0;
        while (offset < input.Length)
        {
            Memory<byte> destination = framer.GetReadBuffer();
            int n = Math.Min(Math.Min(random.Next(1, 40), destination.Length), input.Length - offset);
            input.AsSpan(offset, n).CopyTo(destination.Span);
            framer.Advance(n);
            offset += n;
            while (framer.TryReadLine(out ReadOnlySpan<byte> line))
            {
                actual.Add(Convert.ToHexString(line));
            }
        }

        if (framer.TryReadFinalLine(out ReadOnlySpan<byte> last))
        {
            actual.Add(Convert.ToHexString(last));
        }

        Assert.Equal(expected, actual);
        Assert.Equal(expectedTruncated, framer.TruncatedLines - truncatedBefore);
        Assert.Equal(0, framer.BufferedBytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData(":")]
    [InlineData("|")]
    [InlineData("_e{")]
    [InlineData("_e{,}:")]
    [InlineData("_e{1,1}:")]
    [InlineData("_e{1,1}:a")]
    [InlineData("_e{1,1}:a|")]
    [InlineData("_sc|")]
    [InlineData("_sc||")]
    [InlineData("a:1|c|@1e400")]
    [InlineData("a:1|c|@1e-400")]
    [InlineData("a:1e99999|g")]
    public void Edge_inputs_do_not_throw(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        _ = StatsdLine.TryParse(bytes, out _, out _);
    }
}
