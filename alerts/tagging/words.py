"""The words the tagger reads a place's context by. Lower-case, folded as
:func:`alerts.areas.fold_word` folds them (no apostrophes)."""

from __future__ import annotations


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# "in X", "near X": the thing happened there (or the advice is for there).
PLACE_PREPOSITIONS = _set(
    "in at near around outside across throughout within on off between nearby"
)
# Weaker: "to X", "from X", "of X", "and X" name a place without saying it is the scene.
OTHER_PREPOSITIONS = _set("to from of into via and or by")

# "a Chatham man", "from Deal": one person (whose role decides whether their home counts).
PERSON_NOUNS = _set("""man men woman women boy boys girl girls teenager teenagers teen teens youth youths
    pensioner pensioners couple mother father mum dad son daughter brother brothers sister
    sisters husband wife grandmother grandfather grandad granddad nan driver motorist
    motorcyclist cyclist pedestrian businessman businesswoman landlord landlady trader
    builder pair duo trio child children student students resident homeowner occupant
    victim suspect person people lady gentleman widow widower octogenarian nonagenarian
    schoolboy schoolgirl youngster youngsters family""")
# "X residents", "residents of X": whom the advice is for.
AUDIENCE_NOUNS = _set("""residents householders households homeowners businesses shopkeepers retailers
    communities community neighbourhoods neighbourhood villagers parishioners motorists
    drivers shoppers tenants landlords farmers elderly parents pupils schools
    people""")
# "the Medway area", "the Chatham district": the place itself.
AREA_NOUNS = _set("area areas district borough town towns village villages region locality estate")

# "officers were called to X": the scene.
ATTENDED_WORDS = _set("called attended sent responded rushed dispatched deployed")
# Whose home it is, read from the verbs next to the person.
SUSPECT_WORDS = _set("""arrested arrest arrests charged charge jailed sentenced sentencing convicted remanded
    bailed detained admitted admits pleaded pleads appeared appear appears guilty wanted
    suspect suspects suspected disqualified banned fined imprisoned locked caught summonsed
    cautioned prosecuted accused defendant offender offenders custody court trial
    released interviewed jail prison imprisonment""")
VICTIM_WORDS = _set("""victim victims defrauded scammed conned targeted robbed assaulted attacked injured
    hurt died killed lost tricked duped approached contacted called phoned received
    burgled threatened missing stabbed punched hit seriously concern concerns harmed
    affected cheated swindled fleeced loses lose losing handing gave""")
# Deeds done to a victim, but in the active voice done by the person named before them.
DEEDS = _set(
    """defrauded scammed conned targeted robbed assaulted attacked stabbed punched hit
    threatened cheated swindled fleeced tricked duped burgled harmed killed injured
    defrauding scamming targeting robbing assaulting attacking stabbing threatening"""
)
PASSIVE = _set("was were been being is are got get gets")
VICTIM_PREFIXES = (
    "defraud", "scammed", "targeted", "assault", "injur", "tricked", "duped", "burgl", "threaten",
    "conned", "attacked", "robbed", "cheated",
)  # fmt: skip
# "[name], 34, of X" and "aged 34, from X": the age before "of/from" marks a home.
AGE_WORDS = _set("aged age year old years")
HOME_WORDS = frozenset(["home", "house", "address", "flat"])
POSSESSIVES = frozenset(["his", "her", "their", "its"])
LIVING_WORDS = frozenset(["lives", "living", "live", "lived", "resides", "residing"])

# "Maidstone Crown Court", "Medway Police Station", "Maidstone Hospital": an
# institution, not the place of the incident. Matched on the word after the place (with
# up to two capitalised words between: "Medway Maritime Hospital").
COURT_WORDS = _set("court courts magistrates magistrate tribunal")
POLICE_WORDS = _set("police constabulary")
HOSPITAL_WORDS = _set("hospital hospitals infirmary hospice")
PRISON_WORDS = _set("prison jail")
ORGANISATION_WORDS = _set("""council councils partnership fc united athletic rovers college university academy
    school grammar trust foundation association society club team unit hub cid watch
    housing group ltd limited plc gazette messenger news radio chamber taskforce
    commission diocese archdiocese deanery fire rescue ambulance coastguard rnli""")
STREET_WORDS = _set("""road rd street st lane ln avenue ave way drive dr close crescent gardens terrace
    place square row walk parade grove rise mews bypass highway approach hill""")
# "based in X" / "X-based": where an organisation is, not where the thing happened.
BASE_WORDS = _set("based headquartered registered")
# Before a place: "appeared at court in X", "taken to hospital in X".
INSTITUTION_LEADS = (
    COURT_WORDS
    | POLICE_WORDS
    | HOSPITAL_WORDS
    | PRISON_WORDS
    | frozenset(["custody", "hmp", "station"])
)
# "Inspector Mark Hythe", "Mrs Ashford": a person's name, not a place.
RANK_WORDS = _set(
    """pc pcso dc ds di dci dsu supt sergeant sgt inspector constable superintendent
    detective officer chief commissioner mr mrs ms miss dr councillor cllr sir dame"""
)
TITLE_LEADS = _set("mp mayor bishop archbishop dean lord lady baron baroness earl duke")

# The whole force area: "across Kent", "Kent residents", "county-wide".
COUNTY_LEADS = _set("across throughout around over")
COUNTY_PHRASES = (
    ("across", "the", "county"),
    ("throughout", "the", "county"),
    ("around", "the", "county"),
    ("all", "over", "the", "county"),
    ("county", "wide"),
    ("countywide",),
    ("force", "wide"),
    ("across", "the", "force", "area"),
    ("all", "districts"),
)

# A warning for the whole country (see context.national_phrase).
NATIONAL_PHRASES: tuple[tuple[str, ...], ...] = (
    ("across", "the", "uk"),
    ("throughout", "the", "uk"),
    ("around", "the", "uk"),
    ("across", "the", "country"),
    ("across", "britain"),
    ("across", "great", "britain"),
    ("across", "england", "and", "wales"),
    ("uk", "wide"),
    ("nationally",),
    ("nationwide",),
    ("national", "crime", "agency"),
    ("national", "fraud", "intelligence", "bureau"),
    ("national", "cyber", "security", "centre"),
)
NATIONAL_LEDE_PHRASES: tuple[tuple[str, ...], ...] = (
    ("action", "fraud"),
    ("national", "rise"),
    ("nca",),
)
# "report it to Action Fraud", "contact Action Fraud": where to report, not who warns.
REPORT_LEADS = _set("to via contact call report reported reporting visit through with on")

# Counties, regions and cities elsewhere: "Rainham, Essex", "Gillingham (Dorset)".
OTHER_PLACES = _set("""essex dorset hampshire surrey sussex london berkshire buckinghamshire
    oxfordshire hertfordshire bedfordshire cambridgeshire suffolk norfolk lincolnshire
    northamptonshire leicestershire nottinghamshire derbyshire staffordshire shropshire
    cheshire lancashire yorkshire cumbria northumberland durham merseyside manchester
    warwickshire worcestershire herefordshire gloucestershire wiltshire somerset devon
    cornwall avon wales scotland ireland northumbria cleveland humberside midlands
    southampton portsmouth havering bexley bromley greenwich croydon thurrock southend
    swindon bristol shaftesbury dover-delaware france belgium netherlands calais
    boulogne dunkerque spain metropolitan mercia thames""")
REGION_PREFIXES = _set("east west north south central greater inner outer")
