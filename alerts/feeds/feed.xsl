<?xml version="1.0" encoding="UTF-8"?>
<!--
  Area Alerts: an RSS 2.0 or Atom feed, opened in a web browser, as a page that lists
  its advisories and says how to follow it in a feed reader. Feed readers ignore this
  file; browsers apply it through the feed's xml-stylesheet instruction. Everything is
  read from the feed itself, so one stylesheet serves every area. Text is copied as
  text (never disable-output-escaping): the feed's HTML content is not shown here.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="rss" select="/rss/channel"/>
  <xsl:variable name="atom" select="/atom:feed"/>
  <xsl:variable name="title" select="normalize-space($rss/title | $atom/atom:title)"/>
  <xsl:variable name="self"
      select="($rss/atom:link[@rel='self']/@href | $atom/atom:link[@rel='self']/@href)[1]"/>
  <xsl:variable name="home"
      select="($rss/link | $atom/atom:link[not(@rel) or @rel='alternate']/@href)[1]"/>
  <xsl:variable name="lang" select="($rss/language | $atom/@xml:lang)[1]"/>
  <xsl:variable name="format">
    <xsl:choose>
      <xsl:when test="$atom">Atom</xsl:when>
      <xsl:otherwise>RSS</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <xsl:template match="/">
    <html lang="{$lang}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="robots" content="noindex"/>
        <title><xsl:value-of select="$title"/> (<xsl:value-of select="$format"/> feed)</title>
        <style>
          body { font: 1rem/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 44rem;
                 padding: 1rem; color: #0b0c0c; background: #fff; overflow-wrap: anywhere; }
          a { color: #1d70b8; }
          a:focus { outline: 3px solid #ffdd00; }
          .about { background: #f3f2f1; border-left: 6px solid #1d70b8; padding: .5rem 1rem; }
          .about input { box-sizing: border-box; width: 100%; font: inherit; padding: .4rem;
                         border: 2px solid #0b0c0c; }
          ol { list-style: none; padding: 0; }
          li { border-bottom: 1px solid #b1b4b6; padding: .75rem 0; }
          li h3 { margin: 0 0 .25rem; font-size: 1.125rem; }
          time { color: #505a5f; font-size: .9rem; }
          li p { margin: .25rem 0 0; }
        </style>
      </head>
      <body>
        <header>
          <p><strong>This is a news feed.</strong></p>
          <h1><xsl:value-of select="$title"/></h1>
          <p><xsl:value-of select="normalize-space($rss/description | $atom/atom:subtitle)"/></p>
        </header>
        <main>
          <section class="about" aria-labelledby="follow">
            <h2 id="follow">How to follow this feed</h2>
            <p>A feed reader (such as Feedly, Inoreader, NetNewsWire or the reader built into
              your email program) checks this feed for you and shows each new advisory as it
              is published. Copy this address and add it to your feed reader:</p>
            <p>
              <label for="feed-address">Feed address (<xsl:value-of select="$format"/>)</label>
              <input id="feed-address" type="text" readonly="readonly" value="{$self}"/>
            </p>
            <xsl:if test="$home">
              <p>Prefer email? <a href="{$home}">Visit the web page for these advisories</a>
                to read them in full or to get them by email.</p>
            </xsl:if>
          </section>
          <h2 id="latest">Latest advisories</h2>
          <xsl:choose>
            <xsl:when test="$rss/item | $atom/atom:entry">
              <ol aria-labelledby="latest">
                <xsl:apply-templates select="$rss/item | $atom/atom:entry"/>
              </ol>
            </xsl:when>
            <xsl:otherwise>
              <p>No advisories at the moment. New ones appear here, and in your feed reader,
                as they are published.</p>
            </xsl:otherwise>
          </xsl:choose>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <h3><a href="{link}"><xsl:value-of select="normalize-space(title)"/></a></h3>
      <!-- "Thu, 01 Jan 2026 09:00:00 +0000" shown as "1 Jan 2026" -->
      <time>
        <xsl:value-of select="number(substring(pubDate, 6, 2))"/>
        <xsl:text> </xsl:text>
        <xsl:value-of select="substring(pubDate, 9, 8)"/>
      </time>
      <p><xsl:value-of select="normalize-space(description)"/></p>
    </li>
  </xsl:template>

  <xsl:template match="atom:entry">
    <xsl:variable name="when" select="(atom:published | atom:updated)[1]"/>
    <li>
      <h3>
        <a href="{(atom:link[not(@rel) or @rel='alternate']/@href)[1]}">
          <xsl:value-of select="normalize-space(atom:title)"/>
        </a>
      </h3>
      <time datetime="{$when}">
        <xsl:value-of select="number(substring($when, 9, 2))"/>
        <xsl:text> </xsl:text>
        <xsl:value-of
            select="substring('JanFebMarAprMayJunJulAugSepOctNovDec', 3 * substring($when, 6, 2) - 2, 3)"/>
        <xsl:text> </xsl:text>
        <xsl:value-of select="substring($when, 1, 4)"/>
      </time>
      <p><xsl:value-of select="normalize-space(atom:summary)"/></p>
    </li>
  </xsl:template>
</xsl:stylesheet>
