using static EioSharp.StatsdFilter.Tests.TestUtil;

namespace EioSharp.StatsdFilter.Tests;

public class ParserTests
{
    [Theory]
    [InlineData("page.views:1|c", "page.views", StatsdMetricType.Counter, "1")]
    [InlineData("page.views:-3|c", "page.views", StatsdMetricType.Counter, "-3")]
    [InlineData("fuel.level:0.5|g", "fuel.level", StatsdMetricType.Gauge, "0.5")]
    [InlineData("fuel.level:+4|g", "fuel.level", StatsdMetricType.Gauge, "+4")]
    [InlineData("fuel.level:-4.25|g", "fuel.level", StatsdMetricType.Gauge, "-4.25")]
    [InlineData("req.time:320|ms", "req.time", StatsdMetricType.Timer, "320")]
    [InlineData("req.time:1:2:3|ms", "req.time", StatsdMetricType.Timer, "1:2:3")]
    [InlineData("song.length:240|h", "song.length", StatsdMetricType.Histogram, "240")]
    [InlineData("users.uniques:1234|s", "users.uniques", StatsdMetricType.Set, "1234")]
    [InlineData("users.uniques:alice@example.com|s", "users.uniques", StatsdMetricType.Set, "alice@example.com")]
    [InlineData("users.uniques:a:b|s", "users.uniques", StatsdMetricType.Set, "a:b")]
    [InlineData("latency:1e3|d", "latency", StatsdMetricType.Distribution, "1e3")]
    [InlineData("latency:.5|d", "latency", StatsdMetricType.Distribution, ".5")]
    [InlineData("latency:5.|d", "latency", StatsdMetricType.Distribution, "5.")]
    [InlineData("métrique.été:1|c", "métrique.été", StatsdMetricType.Counter, "1")]
    [InlineData("with space:1|c", "with space", StatsdMetricType.Counter, "1")]
    public void Valid_metric(string text, string name, StatsdMetricType type, string value)
    {
        Assert.True(StatsdLine.TryParse(B(text), out StatsdLineInfo info, out StatsdParseError error));
        Assert.Equal(StatsdParseError.None, error);
        Assert.Equal(StatsdLineKind.Metric, info.Kind);
        Assert.Equal(name, S(info.Name));
        Assert.Equal(type, info.MetricType);
        Assert.Equal(value, S(info.Value));
        Assert.Equal(text, S(info.Line));
        Assert.Equal(1.0, info.SampleRate);
        Assert.False(info.HasTags);
    }

    [Fact]
    public void Fields_sample_rate_tags_container_timestamp_and_extensions()
    {
        const string text = "api.hits:1|c|@0.25|#env:prod,region:eu-west,canary|c:abc123|T1656581400|e:ext";
        Assert.True(StatsdLine.TryParse(B(text), out StatsdLineInfo info));
        Assert.Equal(0.25, info.SampleRate);
        Assert.True(info.HasTags);
        Assert.Equal("env:prod,region:eu-west,canary", S(info.RawTags));
        var tags = new List<(string, string, bool)>();
        foreach (StatsdTag tag in info.GetTags())
        {
            tags.Add((S(tag.Key), S(tag.Value), tag.HasValue));
        }

        Assert.Equal([("env", "prod", true), ("region", "eu-west", true), ("canary", "", false)], tags);
    }

    [Theory]
    [InlineData("a:1|c|@1")]
    [InlineData("a:1|c|@0.000001")]
    [InlineData("a:1|g|@.5")]
    [InlineData("a:1|ms|#x")]
    [InlineData("a:1|ms|#x,,y")]
    [InlineData("a:1|c|#k:v:w")]
    [InlineData("a:x|s|@0.5|#t")]
    [InlineData("a:1|c|T0")]
    [InlineData("a:1|c|cardinality:low")]
    public void Valid_field_shapes(string text)
    {
        Assert.True(StatsdLine.TryParse(B(text), out _, out StatsdParseError error), error.ToString());
    }

    [Theory]
    [InlineData("", StatsdParseError.Empty)]
    [InlineData("novalue", StatsdParseError.MissingValue)]
    [InlineData("a|c", StatsdParseError.MissingValue)]
    [InlineData(":1|c", StatsdParseError.InvalidName)]
    [InlineData("a|b:1|c", StatsdParseError.InvalidName)]
    [InlineData("a\tb:1|c", StatsdParseError.InvalidName)]
    [InlineData("a:1", StatsdParseError.MissingType)]
    [InlineData("a:1|", StatsdParseError.MissingType)]
    [InlineData("a:1||@0.5", StatsdParseError.MissingType)]
    [InlineData("a:1|x", StatsdParseError.UnknownType)]
    [InlineData("a:1|C", StatsdParseError.UnknownType)]
    [InlineData("a:1|msx", StatsdParseError.UnknownType)]
    [InlineData("a:|c", StatsdParseError.InvalidValue)]
    [InlineData("a:|s", StatsdParseError.InvalidValue)]
    [InlineData("a:abc|c", StatsdParseError.InvalidValue)]
    [InlineData("a:1.2.3|g", StatsdParseError.InvalidValue)]
    [InlineData("a:1::2|ms", StatsdParseError.InvalidValue)]
    [InlineData("a:1:|ms", StatsdParseError.InvalidValue)]
    [InlineData("a:--1|g", StatsdParseError.InvalidValue)]
    [InlineData("a:1e|d", StatsdParseError.InvalidValue)]
    [InlineData("a:NaN|g", StatsdParseError.InvalidValue)]
    [InlineData("a: 1|c", StatsdParseError.InvalidValue)]
    [InlineData("a:1|c|@0", StatsdParseError.InvalidSampleRate)]
    [InlineData("a:1|c|@1.5", StatsdParseError.InvalidSampleRate)]
    [InlineData("a:1|c|@-0.5", StatsdParseError.InvalidSampleRate)]
    [InlineData("a:1|c|@", StatsdParseError.InvalidSampleRate)]
    [InlineData("a:1|c|@x", StatsdParseError.InvalidSampleRate)]
    [InlineData("a:1|c|#", StatsdParseError.InvalidTags)]
    [InlineData("a:1|c|#,,", StatsdParseError.InvalidTags)]
    [InlineData("a:1|c|T", StatsdParseError.InvalidTimestamp)]
    [InlineData("a:1|c|T12a", StatsdParseError.InvalidTimestamp)]
    [InlineData("a:1|c|c:", StatsdParseError.InvalidContainer)]
    [InlineData("a:1|c|", StatsdParseError.EmptyField)]
    [InlineData("a:1|c||#t", StatsdParseError.EmptyField)]
    [InlineData("a:1|c|@0.5|@0.5", StatsdParseError.DuplicateField)]
    [InlineData("a:1|c|#x|#y", StatsdParseError.DuplicateField)]
    public void Malformed_metric(string text, StatsdParseError expected)
    {
        Assert.False(StatsdLine.TryParse(B(text), out StatsdLineInfo info, out StatsdParseError error));
        Assert.Equal(expected, error);
        Assert.Equal(StatsdLineKind.None, info.Kind);
    }

    [Fact]
    public void Control_bytes_in_name_are_malformed()
    {
        Assert.False(StatsdLine.TryParse([(byte)'a', 0, (byte)':', (byte)'1', (byte)'|', (byte)'c'], out _));
        Assert.False(StatsdLine.TryParse([(byte)'a', 0x7F, (byte)':', (byte)'1', (byte)'|', (byte)'c'], out _));
    }

    [Theory]
    [InlineData("_e{5,4}:title|text", "title", "text", "")]
    [InlineData("_e{5,0}:title|", "title", "", "")]
    [InlineData("_e{9,8}:a|b:c:d|e|text|f|x|d:1656581400|h:host|p:low|t:warning|#env:prod,x|k:key|s:src", "a|b:c:d|e", "text|f|x", "env:prod,x")]
    [InlineData("_e{5,4}:été|a\\nb", "été", "a\\nb", "")]
    public void Valid_event(string text, string title, string body, string tags)
    {
        Assert.True(StatsdLine.TryParse(B(text), out StatsdLineInfo info, out StatsdParseError error), error.ToString());
        Assert.Equal(StatsdLineKind.Event, info.Kind);
        Assert.Equal(title, S(info.Name));
        Assert.Equal(body, S(info.Value));
        Assert.Equal(tags, S(info.RawTags));
        Assert.Equal(StatsdMetricType.None, info.MetricType);
    }

    [Theory]
    [InlineData("_e{5,4}:title|tex")]
    [InlineData("_e{5,4}:title|textx")]
    [InlineData("_e{5,4}title|text")]
    [InlineData("_e{0,4}:|text")]
    [InlineData("_e{5}:title|text")]
    [InlineData("_e{a,4}:title|text")]
    [InlineData("_e{5,4:title|text")]
    [InlineData("_e{")]
    [InlineData("_e{-1,4}:title|text")]
    [InlineData("_e{99999999999,4}:title|text")]
    [InlineData("_e{999999999,999999999}:title|text")]
    [InlineData("_e{5,4}:title.text")]
    public void Malformed_event(string text)
    {
        Assert.False(StatsdLine.TryParse(B(text), out _, out StatsdParseError error));
        Assert.Equal(StatsdParseError.InvalidEvent, error);
    }

    [Theory]
    [InlineData("_e{5,4}:title|text|", StatsdParseError.EmptyField)]
    [InlineData("_e{5,4}:title|text|#", StatsdParseError.InvalidTags)]
    public void Malformed_event_fields(string text, StatsdParseError expected)
    {
        Assert.False(StatsdLine.TryParse(B(text), out _, out StatsdParseError error));
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData("_sc|db.up|0", "db.up", "0", "")]
    [InlineData("_sc|db.up|3|d:1656581400|h:host|#env:prod|m:it is | down", "db.up", "3", "env:prod")]
    [InlineData("_sc|db.up|2|m:msg|#notatag", "db.up", "2", "")]
    public void Valid_service_check(string text, string name, string status, string tags)
    {
        Assert.True(StatsdLine.TryParse(B(text), out StatsdLineInfo info, out StatsdParseError error), error.ToString());
        Assert.Equal(StatsdLineKind.ServiceCheck, info.Kind);
        Assert.Equal(name, S(info.Name));
        Assert.Equal(status, S(info.Value));
        Assert.Equal(tags, S(info.RawTags));
    }

    [Theory]
    [InlineData("_sc|db.up", StatsdParseError.InvalidServiceCheck)]
    [InlineData("_sc||0", StatsdParseError.InvalidServiceCheck)]
    [InlineData("_sc|db.up|4", StatsdParseError.InvalidServiceCheck)]
    [InlineData("_sc|db.up|", StatsdParseError.InvalidServiceCheck)]
    [InlineData("_sc|db.up|00", StatsdParseError.InvalidServiceCheck)]
    [InlineData("_sc|db.up|0|", StatsdParseError.EmptyField)]
    [InlineData("_sc|db.up|0|#", StatsdParseError.InvalidTags)]
    public void Malformed_service_check(string text, StatsdParseError expected)
    {
        Assert.False(StatsdLine.TryParse(B(text), out _, out StatsdParseError error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void A_metric_named_like_a_service_check_prefix_is_a_metric()
    {
        Assert.True(StatsdLine.TryParse(B("_sc:1|c"), out StatsdLineInfo info));
        Assert.Equal(StatsdLineKind.Metric, info.Kind);
        Assert.True(StatsdLine.TryParse(B("_e:1|c"), out info));
        Assert.Equal(StatsdLineKind.Metric, info.Kind);
    }

    [Theory]
    [InlineData("0", true)]
    [InlineData("-0.5e-3", true)]
    [InlineData("+.5E+2", true)]
    [InlineData("", false)]
    [InlineData("-", false)]
    [InlineData(".", false)]
    [InlineData("1e", false)]
    [InlineData("e5", false)]
    [InlineData("Infinity", false)]
    [InlineData("0x10", false)]
    public void Number_shape(string text, bool expected)
    {
        Assert.Equal(expected, StatsdLine.IsNumber(B(text)));
    }
}
