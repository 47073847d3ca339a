using System.Globalization;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string GeoErrUnit = "ERR unsupported unit provided. please use M, KM, FT, MI";
    private const string GeoErrMember = "ERR could not decode requested zset member";
    private const string GeoErrRadius = "ERR need numeric radius";
    private const string GeoErrRadiusNegative = "ERR radius cannot be negative";
    private const string GeoErrWidth = "ERR need numeric width";
    private const string GeoErrHeight = "ERR need numeric height";
    private const string GeoErrBoxNegative = "ERR height or width cannot be negative";
    private const string GeoErrCount = "ERR COUNT must be > 0";
    private const string GeoErrAny = "ERR the ANY argument requires COUNT argument";

    [Flags]
    private enum GeoFlags { None = 0, RadiusCoords = 1, RadiusMember = 2, NoStore = 4, Search = 8, SearchStore = 16 }

    /// <summary>The Geo commands.</summary>
    internal static readonly KvCommandInfo[] GeoCommands =
    [
        KvCommandTable.Data("geoadd", -5, W, 1, 1, 1, static (s, in c) => s.GeoAdd(c)),
        KvCommandTable.Data("geodist", -4, R, 1, 1, 1, static (s, in c) => s.GeoDist(c)),
        KvCommandTable.Data("geohash", -2, R, 1, 1, 1, static (s, in c) => s.GeoHashCommand(c)),
        KvCommandTable.Data("geopos", -2, R, 1, 1, 1, static (s, in c) => s.GeoPos(c)),
        KvCommandTable.Data("georadius", -6, W, 1, 1, 1, static (s, in c) => s.GeoRadius(c, 1, GeoFlags.RadiusCoords)),
        KvCommandTable.Data("georadius_ro", -6, R, 1, 1, 1, static (s, in c) => s.GeoRadius(c, 1, GeoFlags.RadiusCoords | GeoFlags.NoStore)),
        KvCommandTable.Data("georadiusbymember", -5, W, 1, 1, 1, static (s, in c) => s.GeoRadius(c, 1, GeoFlags.RadiusMember)),
        KvCommandTable.Data("georadiusbymember_ro", -5, R, 1, 1, 1, static (s, in c) => s.GeoRadius(c, 1, GeoFlags.RadiusMember | GeoFlags.NoStore)),
        KvCommandTable.Data("geosearch", -7, R, 1, 1, 1, static (s, in c) => s.GeoRadius(c, 1, GeoFlags.Search)),
        KvCommandTable.Data("geosearchstore", -8, W, 1, 2, 1, static (s, in c) => s.GeoRadius(c, 2, GeoFlags.Search | GeoFlags.SearchStore)),
    ];

    /// <summary>Redis's ld2string(LD_STR_HUMAN) of a coordinate: <c>%.17Lf</c> without trailing zeros.</summary>
    private static string FormatCoordinate(double value)
    {
        string s = value.ToString("F17", CultureInfo.InvariantCulture);
        if (s.Contains('.', StringComparison.Ordinal)) s = s.TrimEnd('0').TrimEnd('.');
        return s == "-0" ? "0" : s;
    }

    private static void WriteCoordinate(RespWriter reply, double value)
    {
        string text = FormatCoordinate(value);
        if (!reply.IsResp3)
        {
            reply.WriteBulkString(text);
            return;
        }
        reply.WriteRaw(System.Text.Encoding.ASCII.GetBytes("," + text + "\r\n"));
    }

    private static void WriteDistance(RespWriter reply, double meters) => reply.WriteBulkString(meters.ToString("F4", CultureInfo.InvariantCulture));

    private static double UnitToMeters(ReadOnlySpan<byte> unit) =>
        Is(unit, "M"u8) ? 1 : Is(unit, "KM"u8) ? 1000 : Is(unit, "FT"u8) ? 0.3048 : Is(unit, "MI"u8) ? 1609.34 : -1;

    private static bool TryGetUnit(in Context ctx, int index, out double toMeters)
    {
        toMeters = UnitToMeters(ctx[index]);
        if (toMeters > 0) return true;
        ctx.Reply.WriteError(GeoErrUnit);
        return false;
    }

    /// <summary>extractLongLatOrReply: two floats in range.</summary>
    private static bool TryGetLonLat(in Context ctx, int index, out double lon, out double lat)
    {
        lat = 0;
        if (!TryParseScore(ctx[index], out lon) || !TryParseScore(ctx[index + 1], out lat))
        {
            ctx.Reply.WriteError(KvErrors.NotFloat);
            return false;
        }
        if (lon < GeoHash.LongMin || lon > GeoHash.LongMax || lat < GeoHash.LatMin || lat > GeoHash.LatMax)
        {
            ctx.Reply.WriteError(string.Create(CultureInfo.InvariantCulture, $"ERR invalid longitude,latitude pair {lon:F6},{lat:F6}"));
            return false;
        }
        return true;
    }

    private void GeoAdd(in Context ctx)
    {
        bool nx = false, xx = false;
        int lonIndex = 2;
        for (; lonIndex < ctx.Count; lonIndex++)
        {
            ReadOnlySpan<byte> opt = ctx[lonIndex];
            if (Is(opt, "NX"u8)) nx = true;
            else if (Is(opt, "XX"u8)) xx = true;
            else if (!Is(opt, "CH"u8)) break;
        }
        if ((ctx.Count - lonIndex) % 3 != 0 || (xx && nx))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        int elements = (ctx.Count - lonIndex) / 3;
        var args = new byte[lonIndex + elements * 2][];
        args[0] = "zadd"u8.ToArray();
        for (int i = 1; i < lonIndex; i++) args[i] = ctx[i].ToArray();
        for (int i = 0; i < elements; i++)
        {
            if (!TryGetLonLat(ctx, lonIndex + i * 3, out double lon, out double lat)) return;
            args[lonIndex + i * 2] = Bytes((long)GeoHash.Score(lon, lat));
            args[lonIndex + i * 2 + 1] = ctx[lonIndex + i * 3 + 2].ToArray();
        }
        // Like Redis, GEOADD runs (and is logged as) the ZADD it translates to.
        var zadd = new Context(this, ctx.Db, ctx.Session, KvCommand.Create(args), ctx.Now, ctx.Reply, ctx.Aof, "zadd");
        ZAdd(zadd, incrCommand: false);
    }

    private void GeoDist(in Context ctx)
    {
        double toMeters = 1;
        if (ctx.Count == 5)
        {
            if (!TryGetUnit(ctx, 4, out toMeters)) return;
        }
        else if (ctx.Count > 5)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is null || !zset.TryGetScore(ctx[2], out double s1) || !zset.TryGetScore(ctx[3], out double s2))
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        (double lon1, double lat1) = GeoHash.DecodeScore(s1);
        (double lon2, double lat2) = GeoHash.DecodeScore(s2);
        WriteDistance(ctx.Reply, GeoHash.Distance(lon1, lat1, lon2, lat2) / toMeters);
    }

    private void GeoHashCommand(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        ctx.Reply.WriteArrayHeader(ctx.Count - 2);
        for (int j = 2; j < ctx.Count; j++)
        {
            if (zset is not null && zset.TryGetScore(ctx[j], out double score)) ctx.Reply.WriteBulkString(GeoHash.StandardHash(score));
            else ctx.Reply.WriteNullBulkString();
        }
    }

    private void GeoPos(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        ctx.Reply.WriteArrayHeader(ctx.Count - 2);
        for (int j = 2; j < ctx.Count; j++)
        {
            if (zset is not null && zset.TryGetScore(ctx[j], out double score))
            {
                (double lon, double lat) = GeoHash.DecodeScore(score);
                ctx.Reply.WriteArrayHeader(2);
                WriteCoordinate(ctx.Reply, lon);
                WriteCoordinate(ctx.Reply, lat);
            }
            else
            {
                ctx.Reply.WriteNullArray();
            }
        }
    }

    private readonly record struct GeoPoint(byte[] Member, double Score, double Lon, double Lat, double Distance);

    private bool TryGetDistance(in Context ctx, int index, out double radius, out double conversion)
    {
        conversion = 0;
        if (!TryParseScore(ctx[index], out radius))
        {
            ctx.Reply.WriteError(GeoErrRadius);
            return false;
        }
        if (radius < 0)
        {
            ctx.Reply.WriteError(GeoErrRadiusNegative);
            return false;
        }
        return TryGetUnit(ctx, index + 1, out conversion);
    }

    /// <summary>GEORADIUS, GEORADIUSBYMEMBER (and _RO), GEOSEARCH, GEOSEARCHSTORE: Redis's georadiusGeneric.</summary>
    private void GeoRadius(in Context ctx, int srcIndex, GeoFlags flags)
    {
        if (!TryLookupValue(ctx, ctx[srcIndex], read: true, out KvZSet? zset)) return;
        byte[]? storeKey = null;
        bool storeDist = false;
        double lon = 0, lat = 0, radius = 0, width = 0, height = 0, conversion = 1;
        bool isBox = false;
        int baseArgs;
        if ((flags & GeoFlags.RadiusCoords) != 0)
        {
            baseArgs = 6;
            if (!TryGetLonLat(ctx, 2, out lon, out lat)) return;
            if (!TryGetDistance(ctx, 4, out radius, out conversion)) return;
        }
        else if ((flags & GeoFlags.RadiusMember) != 0)
        {
            baseArgs = 5;
            if (zset is not null)
            {
                if (!zset.TryGetScore(ctx[2], out double score))
                {
                    ctx.Reply.WriteError(GeoErrMember);
                    return;
                }
                (lon, lat) = GeoHash.DecodeScore(score);
                if (!TryGetDistance(ctx, 3, out radius, out conversion)) return;
            }
        }
        else
        {
            baseArgs = 2;
            if ((flags & GeoFlags.SearchStore) != 0)
            {
                baseArgs = 3;
                storeKey = ctx[1].ToArray();
            }
        }

        bool withDist = false, withHash = false, withCoord = false, any = false;
        bool fromMember = false, fromLoc = false, byRadius = false, byBox = false;
        int sort = 0; // 0 none, 1 asc, 2 desc
        long count = 0;
        bool search = (flags & GeoFlags.Search) != 0;
        int remaining = ctx.Count - baseArgs;
        for (int i = 0; i < remaining; i++)
        {
            int a = baseArgs + i;
            ReadOnlySpan<byte> arg = ctx[a];
            if (Is(arg, "WITHDIST"u8)) withDist = true;
            else if (Is(arg, "WITHHASH"u8)) withHash = true;
            else if (Is(arg, "WITHCOORD"u8)) withCoord = true;
            else if (Is(arg, "ANY"u8)) any = true;
            else if (Is(arg, "ASC"u8)) sort = 1;
            else if (Is(arg, "DESC"u8)) sort = 2;
            else if (Is(arg, "COUNT"u8) && i + 1 < remaining)
            {
                if (!TryGetInt64(ctx, a + 1, out count)) return;
                if (count <= 0)
                {
                    ctx.Reply.WriteError(GeoErrCount);
                    return;
                }
                i++;
            }
            else if ((Is(arg, "STORE"u8) || Is(arg, "STOREDIST"u8)) && i + 1 < remaining && (flags & GeoFlags.NoStore) == 0 && !search)
            {
                storeKey = ctx[a + 1].ToArray();
                storeDist = Is(arg, "STOREDIST"u8);
                i++;
            }
            else if (Is(arg, "STOREDIST"u8) && search && (flags & GeoFlags.SearchStore) != 0)
            {
                storeDist = true;
            }
            else if (Is(arg, "FROMMEMBER"u8) && i + 1 < remaining && search && !fromLoc)
            {
                if (zset is not null)
                {
                    if (!zset.TryGetScore(ctx[a + 1], out double score))
                    {
                        ctx.Reply.WriteError(GeoErrMember);
                        return;
                    }
                    (lon, lat) = GeoHash.DecodeScore(score);
                }
                fromMember = true;
                i++;
            }
            else if (Is(arg, "FROMLONLAT"u8) && i + 2 < remaining && search && !fromMember)
            {
                if (!TryGetLonLat(ctx, a + 1, out lon, out lat)) return;
                fromLoc = true;
                i += 2;
            }
            else if (Is(arg, "BYRADIUS"u8) && i + 2 < remaining && search && !byBox)
            {
                if (!TryGetDistance(ctx, a + 1, out radius, out conversion)) return;
                isBox = false;
                byRadius = true;
                i += 2;
            }
            else if (Is(arg, "BYBOX"u8) && i + 3 < remaining && search && !byRadius)
            {
                if (!TryParseScore(ctx[a + 1], out width))
                {
                    ctx.Reply.WriteError(GeoErrWidth);
                    return;
                }
                if (!TryParseScore(ctx[a + 2], out height))
                {
                    ctx.Reply.WriteError(GeoErrHeight);
                    return;
                }
                if (height < 0 || width < 0)
                {
                    ctx.Reply.WriteError(GeoErrBoxNegative);
                    return;
                }
                if (!TryGetUnit(ctx, a + 3, out conversion)) return;
                isBox = true;
                byBox = true;
                i += 3;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (storeKey is not null && (withDist || withHash || withCoord))
        {
            ctx.Reply.WriteError((flags & GeoFlags.SearchStore) != 0
                ? "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
                : "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options");
            return;
        }
        if (search && !(fromMember || fromLoc))
        {
            ctx.Reply.WriteError($"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {ctx.Command.GetString(0)}");
            return;
        }
        if (search && !(byRadius || byBox))
        {
            ctx.Reply.WriteError($"ERR exactly one of BYRADIUS and BYBOX can be specified for {ctx.Command.GetString(0)}");
            return;
        }
        if (any && count == 0)
        {
            ctx.Reply.WriteError(GeoErrAny);
            return;
        }
        if (zset is null)
        {
            if (storeKey is not null)
            {
                KvEntry? existing = Lookup(ctx, storeKey);
                if (existing is not null)
                {
                    DeleteKey(ctx, existing);
                    Changed(ctx, storeKey, KvEventClass.Generic, "del");
                    ctx.Log("DEL"u8.ToArray(), storeKey);
                }
                ctx.Reply.WriteInteger(0);
            }
            else
            {
                ctx.Reply.WriteArrayHeader(0);
            }
            return;
        }
        if (count != 0 && sort == 0 && !any) sort = 1;

        var shape = new GeoHash.Shape(lon, lat, isBox, radius, width, height, conversion);
        List<GeoPoint> points = GeoSearchPoints(zset, shape, any ? count : 0);
        if (points.Count == 0 && storeKey is null)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        long returned = count == 0 || points.Count < count ? points.Count : count;
        if (sort == 1) points = [.. points.OrderBy(p => p.Distance)];
        else if (sort == 2) points = [.. points.OrderByDescending(p => p.Distance)];

        if (storeKey is null)
        {
            int options = (withDist ? 1 : 0) + (withCoord ? 1 : 0) + (withHash ? 1 : 0);
            ctx.Reply.WriteArrayHeader((int)returned);
            for (int i = 0; i < returned; i++)
            {
                GeoPoint p = points[i];
                if (options > 0) ctx.Reply.WriteArrayHeader(options + 1);
                ctx.Reply.WriteBulkString(p.Member);
                if (withDist) WriteDistance(ctx.Reply, p.Distance / conversion);
                if (withHash) ctx.Reply.WriteInteger((long)p.Score);
                if (withCoord)
                {
                    ctx.Reply.WriteArrayHeader(2);
                    WriteCoordinate(ctx.Reply, p.Lon);
                    WriteCoordinate(ctx.Reply, p.Lat);
                }
            }
            return;
        }
        KvZSet result = KvZSet.CreateSkipList();
        for (int i = 0; i < returned; i++)
        {
            GeoPoint p = points[i];
            result.Set(p.Member, storeDist ? p.Distance / conversion : p.Score, Encodings);
        }
        result.ShrinkIfFits(Encodings);
        bool existed = Lookup(ctx.Db, storeKey, ctx.Now) is not null; // no access: ZStoreResult's lookup is the one (setKey)
        ZStoreResult(ctx, storeKey, result, search ? "geosearchstore" : "georadiusstore");
        if (returned > 0 || existed) ctx.LogSelf();
        ctx.Reply.WriteInteger(returned);
    }

    /// <summary>Redis's membersOfAllNeighbors: the points of the 9 cells around the center that lie inside the shape, in
    /// cell order then score order; with <paramref name="limit"/> &gt; 0 (ANY), stops once that many are found.</summary>
    private static List<GeoPoint> GeoSearchPoints(KvZSet zset, in GeoHash.Shape shape, long limit)
    {
        var points = new List<GeoPoint>();
        GeoHash.Bits[] cells = GeoHash.AreasByShape(shape);
        int lastProcessed = 0;
        for (int i = 0; i < cells.Length; i++)
        {
            if (cells[i].IsZero) continue;
            if (lastProcessed != 0 && cells[i] == cells[lastProcessed]) continue;
            if (points.Count > 0 && limit > 0 && points.Count >= limit) break;
            ulong min = GeoHash.Align52(cells[i]);
            ulong max = GeoHash.Align52(cells[i] with { Value = cells[i].Value + 1 });
            var range = new ZScoreRange(min, false, max, true);
            long lo = zset.CountBelow(range), hi = zset.CountUpToMax(range);
            if (hi > lo)
            {
                foreach (ZEntry e in zset.Range(lo, hi - 1, reverse: false))
                {
                    if (GeoHash.WithinShape(shape, e.Score, out double lon, out double lat, out double distance))
                        points.Add(new GeoPoint(e.Member, e.Score, lon, lat, distance));
                    if (points.Count > 0 && limit > 0 && points.Count >= limit) break;
                }
            }
            lastProcessed = i;
        }
        return points;
    }
}
