"""PS3.15 Annex E Table E.1-1: the attributes of the Basic Application Level Confidentiality
Profile, the action the profile takes on each, and which of the options we offer change it.

Transcribed from the standard's table (PS3.15 2024 edition), one attribute a line: the tag
(``x`` stands for any hex digit of a repeating group), the basic profile's action, the options
that change it, and the attribute's name. The actions are the standard's:

  D  replace with a dummy value of the same VR        Z  replace with an empty value (or a dummy)
  X  remove                                            K  keep
  C  clean: keep the meaning, drop identifying text    U  replace the UID, consistently
  X/Z, X/D, Z/D, X/Z/D, X/Z/U*: the first unless the IOD needs the attribute (see profile.py).

Option letters: I Retain Institution Identity (K), V Retain Device Identity (K), P Retain Patient
Characteristics (K), p the same option's C, T Retain Longitudinal Temporal Information (Full
Dates: K, Modified Dates: C), C Clean Descriptors (C). The options we do not offer (Retain UIDs,
Retain Safe Private, Clean Structured Content, Clean Graphics) are left out of the letters: the
basic action applies. Private attributes (odd groups) are removed: profile.py does it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    tag: str  # 8 hex digits, "x" for any
    action: str
    options: str
    name: str


TABLE_E_1_1 = """
00001000 X      -    Affected SOP Instance UID
00001001 U      -    Requested SOP Instance UID
00020003 U      -    Media Storage SOP Instance UID
00041511 U      -    Referenced SOP Instance UID in File
00080014 U      -    Instance Creator UID
00080015 X      T    Instance Coercion DateTime
00080018 U      -    SOP Instance UID
00080020 Z      T    Study Date
00080021 X/D    T    Series Date
00080022 X/Z    T    Acquisition Date
00080023 Z/D    T    Content Date
00080024 X      T    Overlay Date
00080025 X      T    Curve Date
0008002A X/Z/D  T    Acquisition DateTime
00080030 Z      T    Study Time
00080031 X/D    T    Series Time
00080032 X/Z    T    Acquisition Time
00080033 Z/D    T    Content Time
00080034 X      T    Overlay Time
00080035 X      T    Curve Time
00080050 Z      -    Accession Number
00080058 U      -    Failed SOP Instance UID List
00080080 X/Z/D  I    Institution Name
00080081 X      I    Institution Address
00080082 X/Z/D  I    Institution Code Sequence
00080090 Z      -    Referring Physician's Name
00080092 X      -    Referring Physician's Address
00080094 X      -    Referring Physician's Telephone Numbers
00080096 X      -    Referring Physician Identification Sequence
0008009C Z      -    Consulting Physician's Name
0008009D X      -    Consulting Physician Identification Sequence
00080201 X      T    Timezone Offset From UTC
00081010 X/Z/D  V    Station Name
00081030 X      C    Study Description
0008103E X      C    Series Description
00081040 X      I    Institutional Department Name
00081041 X      I    Institutional Department Type Code Sequence
00081048 X      -    Physician(s) of Record
00081049 X      -    Physician(s) of Record Identification Sequence
00081050 X      -    Performing Physician's Name
00081052 X      -    Performing Physician Identification Sequence
00081060 X      -    Name of Physician(s) Reading Study
00081062 X      -    Physician(s) Reading Study Identification Sequence
00081070 X/Z/D  -    Operators' Name
00081072 X/D    -    Operator Identification Sequence
00081080 X      C    Admitting Diagnoses Description
00081084 X      C    Admitting Diagnoses Code Sequence
00081110 X/Z    -    Referenced Study Sequence
00081111 X/Z/D  -    Referenced Performed Procedure Step Sequence
00081120 X      -    Referenced Patient Sequence
00081140 X/Z/U* -    Referenced Image Sequence
00081155 U      -    Referenced SOP Instance UID
00081195 U      -    Transaction UID
00082111 X      C    Derivation Description
00082112 X/Z/U* -    Source Image Sequence
00083010 U      -    Irradiation Event UID
00084000 X      C    Identifying Comments
00100010 Z      -    Patient's Name
00100020 Z      -    Patient ID
00100021 X      -    Issuer of Patient ID
00100030 Z      -    Patient's Birth Date
00100032 X      -    Patient's Birth Time
00100040 Z      P    Patient's Sex
00100050 X      -    Patient's Insurance Plan Code Sequence
00100101 X      -    Patient's Primary Language Code Sequence
00100102 X      -    Patient's Primary Language Modifier Code Sequence
00101000 X      -    Other Patient IDs
00101001 X      -    Other Patient Names
00101002 X      -    Other Patient IDs Sequence
00101005 X      -    Patient's Birth Name
00101010 X      P    Patient's Age
00101020 X      P    Patient's Size
00101030 X      P    Patient's Weight
00101040 X      -    Patient's Address
00101050 X      -    Insurance Plan Identification
00101060 X      -    Patient's Mother's Birth Name
00101080 X      -    Military Rank
00101081 X      -    Branch of Service
00101090 X      -    Medical Record Locator
00101100 X      -    Referenced Patient Photo Sequence
00102000 X      C    Medical Alerts
00102110 X      pC   Allergies
00102150 X      -    Country of Residence
00102152 X      -    Region of Residence
00102154 X      -    Patient's Telephone Numbers
00102155 X      -    Patient's Telecom Information
00102160 X      P    Ethnic Group
00102180 X      C    Occupation
001021A0 X      P    Smoking Status
001021B0 X      C    Additional Patient History
001021C0 X      P    Pregnancy Status
001021D0 X      T    Last Menstrual Date
001021F0 X      -    Patient's Religious Preference
00102203 X/Z    P    Patient's Sex Neutered
00102297 X      -    Responsible Person
00102299 X      -    Responsible Organization
00104000 X      C    Patient Comments
00120010 D      -    Clinical Trial Sponsor Name
00120020 D      -    Clinical Trial Protocol ID
00120021 Z      -    Clinical Trial Protocol Name
00120030 Z      I    Clinical Trial Site ID
00120031 Z      I    Clinical Trial Site Name
00120040 D      -    Clinical Trial Subject ID
00120042 D      -    Clinical Trial Subject Reading ID
00120050 Z      -    Clinical Trial Time Point ID
00120051 X      C    Clinical Trial Time Point Description
00120060 Z      I    Clinical Trial Coordinating Center Name
00120071 X      -    Clinical Trial Series ID
00120072 X      C    Clinical Trial Series Description
00120081 D      I    Clinical Trial Protocol Ethics Committee Name
00120082 X      -    Clinical Trial Protocol Ethics Committee Approval Number
0016002B X      C    Maker Note
0016004B X      C    Device Setting Description
0016004D X      -    Camera Owner Name
0016004E X      V    Lens Specification
0016004F X      V    Lens Make
00160050 X      V    Lens Model
00160051 X      V    Lens Serial Number
00160070 X      -    GPS Version ID
00160071 X      -    GPS Latitudeâ Ref
00160072 X      -    GPS Latitudeâ
00160073 X      -    GPS Longitude Ref
00160074 X      -    GPS Longitude
00160075 X      -    GPS Altitudeâ Ref
00160076 X      -    GPS Altitudeâ
00160077 X      -    GPS Timeâ Stamp
00160078 X      -    GPS Satellites
00160079 X      -    GPS Status
0016007A X      -    GPS Measure âMode
0016007B X      -    GPS DOP
0016007C X      -    GPS Speedâ Ref
0016007D X      -    GPS Speedâ
0016007E X      -    GPS Track âRef
0016007F X      -    GPS Track
00160080 X      -    GPS Imgâ Direction Ref
00160081 X      -    GPS Img âDirection
00160082 X      -    GPS Mapâ Datum
00160083 X      -    GPS Destâ Latitude Ref
00160084 X      -    GPS Destâ Latitude
00160085 X      -    GPS Dest âLongitude Ref
00160086 X      -    GPS Dest âLongitude
00160087 X      -    GPS Destâ Bearing Ref
00160088 X      -    GPS Dest âBearing
00160089 X      -    GPS Dest âDistance Ref
0016008A X      -    GPS Dest âDistance
0016008B X      -    GPS Processingâ Method
0016008C X      -    GPS Area âInformation
0016008D X      T    GPS Dateâ Stamp
0016008E X      -    GPS Differential
00180010 Z/D    C    Contrast/Bolus Agent
00181000 X/Z/D  V    Device Serial Number
00181002 U      V    Device UID
00181004 X      V    Plate ID
00181005 X      V    Generator ID
00181007 X      V    Cassette ID
00181008 X      V    Gantry ID
00181009 X      V    Unique Device Identifier
0018100A X      V    UDI Sequence
0018100B U      V    Manufacturer's Device Class UID
00181030 X/D    C    Protocol Name
00181400 X/D    C    Acquisition Device Processing Description
00182042 U      -    Target UID
00184000 X      C    Acquisition Comments
0018700A X/D    V    Detector ID
00189185 X      C    Respiratory Motion Compensation Technique Description
00189424 X      C    Acquisition Protocol Description
00189516 X/D    T    Start Acquisition DateTime
00189517 X/D    T    End Acquisition DateTime
0018A003 X      C    Contribution Description
0020000D U      -    Study Instance UID
0020000E U      -    Series Instance UID
00200010 Z      -    Study ID
00200052 U      -    Frame of Reference UID
00200200 U      -    Synchronization Frame of Reference UID
00203401 X      -    Modifying Device ID
00203406 X      -    Modified Image Description
00204000 X      C    Image Comments
00209158 X      C    Frame Comments
00209161 U      -    Concatenation UID
00209164 U      -    Dimension Organization UID
00281199 U      -    Palette Color Lookup Table UID
00281214 U      -    Large Palette Color Lookup Table UID
00284000 X      -    Image Presentation Comments
00320012 X      -    Study ID Issuer
00321020 X      V    Scheduled Study Location
00321021 X      V    Scheduled Study Location AE Title
00321030 X      C    Reason for Study
00321032 X      -    Requesting Physician
00321033 X      -    Requesting Service
00321060 X/Z    C    Requested Procedure Description
00321066 X      C    Reason for Visit
00321067 X      C    Reason for Visit Code Sequence
00321070 X      C    Requested Contrast Agent
00324000 X      C    Study Comments
00340001 D      -    Flow Identifier Sequence
00340002 D      -    Flow Identifier
00340005 D      -    Source Identifier
00340007 D      T    Frame Origin Timestamp
00380004 X      -    Referenced Patient Alias Sequence
00380010 X      -    Admission ID
00380011 X      -    Issuer of Admission ID
00380014 X      -    Issuer of Admission ID Sequence
0038001E X      -    Scheduled Patient Institution Residence
00380020 X      T    Admitting Date
00380021 X      T    Admitting Time
00380040 X      C    Discharge Diagnosis Description
00380050 X      p    Special Needs
00380060 X      -    Service Episode ID
00380061 X      -    Issuer of Service Episode ID
00380062 X      C    Service Episode Description
00380064 X      -    Issuer of Service Episode ID Sequence
00380300 X      -    Current Patient Location
00380400 X      -    Patient's Institution Residence
00380500 X      pC   Patient State
00384000 X      C    Visit Comments
00400001 X      V    Scheduled Station AE Title
00400002 X      T    Scheduled Procedure Step Start Date
00400003 X      T    Scheduled Procedure Step Start Time
00400004 X      T    Scheduled Procedure Step End Date
00400005 X      T    Scheduled Procedure Step End Time
00400006 X      -    Scheduled Performing Physician's Name
00400007 X      C    Scheduled Procedure Step Description
0040000B X      -    Scheduled Performing Physician Identification Sequence
00400010 X      V    Scheduled Station Name
00400011 X      V    Scheduled Procedure Step Location
00400012 X      p    Pre-Medication
00400241 X      V    Performed Station AE Title
00400242 X      V    Performed Station Name
00400243 X      -    Performed Location
00400244 X      T    Performed Procedure Step Start Date
00400245 X      T    Performed Procedure Step Start Time
00400250 X      T    Performed Procedure Step End Date
00400251 X      T    Performed Procedure Step End Time
00400253 X      -    Performed Procedure Step ID
00400254 X      C    Performed Procedure Step Description
00400275 X      C    Request Attributes Sequence
00400280 X      C    Comments on the Performed Procedure Step
0040050A X      -    Specimen Accession Number
00400512 D      -    Container Identifier
00400513 Z      -    Issuer of the Container Identifier Sequence
0040051A X      C    Container Description
00400551 D      -    Specimen Identifier
00400554 U      -    Specimen UID
00400555 X/Z    -    Acquisition Context Sequence
00400562 Z      -    Issuer of the Specimen Identifier Sequence
00400600 X      C    Specimen Short Description
00400602 X      C    Specimen Detailed Description
00400610 Z      -    Specimen Preparation Sequence
004006FA X      -    Slide Identifier
00401001 X      -    Requested Procedure ID
00401002 X      C    Reason for the Requested Procedure
00401004 X      -    Patient Transport Arrangements
00401005 X      -    Requested Procedure Location
0040100A X      C    Reason for Requested Procedure Code Sequence
00401010 X      -    Names of Intended Recipients of Results
00401011 X      -    Intended Recipients of Results Identification Sequence
00401101 D      -    Person Identification Code Sequence
00401102 X      -    Person's Address
00401103 X      -    Person's Telephone Numbers
00401104 X      -    Person's Telecom Information
00401400 X      C    Requested Procedure Comments
00402001 X      C    Reason for the Imaging Service Request
00402008 X      -    Order Entered By
00402009 X      -    Order Enterer's Location
00402010 X      -    Order Callback Phone Number
00402011 X      -    Order Callback Telecom Information
00402016 Z      -    Placer Order Number / Imaging Service Request
00402017 Z      -    Filler Order Number / Imaging Service Request
00402400 X      C    Imaging Service Request Comments
00403001 X      -    Confidentiality Constraint on Patient Data Description
00404005 X      T    Scheduled Procedure Step Start DateTime
00404008 X      T    Scheduled Procedure Step Expiration DateTime
00404010 X      T    Scheduled Procedure Step Modification DateTime
00404011 X      T    Expected Completion DateTime
00404023 U      -    Referenced General Purpose Scheduled Procedure Step Transaction UID
00404025 X      V    Scheduled Station Name Code Sequence
00404027 X      V    Scheduled Station Geographic Location Code Sequence
00404028 X      V    Performed Station Name Code Sequence
00404030 X      V    Performed Station Geographic Location Code Sequence
00404034 X      -    Scheduled Human Performers Sequence
00404035 X      -    Actual Human Performers Sequence
00404036 X      -    Human Performer's Organization
00404037 X      -    Human Performer's Name
00404050 X      T    Performed Procedure Step Start DateTime
00404051 X      T    Performed Procedure Step End DateTime
00404052 X      T    Procedure Step Cancellation DateTime
0040A027 D      -    Verifying Organization
0040A073 D      -    Verifying Observer Sequence
0040A075 D      -    Verifying Observer Name
0040A078 X      -    Author Observer Sequence
0040A07A X      -    Participant Sequence
0040A07C X      -    Custodial Organization Sequence
0040A088 Z      -    Verifying Observer Identification Code Sequence
0040A123 D      -    Person Name
0040A124 U      -    UID
0040A171 U      -    Observation UID
0040A172 U      -    Referenced Observation UID (Trial)
0040A192 X      T    Observation Date (Trial)
0040A193 X      T    Observation Time (Trial)
0040A307 X      -    Current Observer (Trial)
0040A352 X      -    Verbal Source (Trial)
0040A353 X      -    Address (Trial)
0040A354 X      -    Telephone Number (Trial)
0040A358 X      -    Verbal Source Identifier Code Sequence (Trial)
0040A402 U      -    Observation Subject UID (Trial)
0040A730 D      -    Content Sequence
0040DB0C U      -    Template Extension Organization UID
0040DB0D U      -    Template Extension Creator UID
0050001B X      -    Container Component ID
00500020 X      V    Device Description
00500021 X      C    Long Device Description
00620021 U      -    Tracking UID
00700001 D      -    Graphic Annotation Sequence
00700084 Z/D    -    Content Creator's Name
00700086 X      -    Content Creator's Identification Code Sequence
0070031A U      -    Fiducial UID
00701101 U      -    Presentation Display Collection UID
00701102 U      -    Presentation Sequence Collection UID
00880140 U      -    Storage Media File-set UID
00880200 X      -    Icon Image Sequence
00880904 X      -    Topic Title
00880906 X      -    Topic Subject
00880910 X      -    Topic Author
00880912 X      -    Topic Keywords
04000100 U      -    Digital Signature UID
04000402 X      -    Referenced Digital Signature Sequence
04000403 X      -    Referenced SOP Instance MAC Sequence
04000404 X      -    MAC
04000550 X      -    Modified Attributes Sequence
04000561 X      -    Original Attributes Sequence
04000600 X      -    Instance Origin Status
20300020 X      -    Text String
22000002 X/Z    C    Label Text
22000005 X/Z    -    Barcode Value
30060024 U      -    Referenced Frame of Reference UID
300600C2 U      -    Related Frame of Reference UID
30080054 X/D    T    First Treatment Date
30080056 X/D    T    Most Recent Treatment Date
30080105 X/Z    V    Source Serial Number
30080105 X      V    Source Serial Number
30080250 X/D    T    Treatment Date
30080251 X/D    T    Treatment Time
300A0002 D      C    RT Plan Label
300A0003 X      C    RT Plan Name
300A0004 X      C    RT Plan Description
300A0006 X/D    T    RT Plan Date
300A0007 X/D    T    RT Plan Time
300A000E X      C    Prescription Description
300A0013 U      -    Dose Reference UID
300A0016 X      C    Dose Reference Description
300A0072 X      C    Fraction Group Description
300A0083 U      -    Referenced Dose Reference UID
300A00B2 X      V    Treatment Machine Name
300A00C3 X      C    Beam Description
300A00DD X      C    Bolus Description
300A0196 X      C    Fixation Device Description
300A01A6 X      C    Shielding Device Description
300A01B2 X      C    Setup Technique Description
300A0216 X      V    Source Manufacturer
300A02EB X      C    Compensator Description
300A0608 D      C    Treatment Position Group Label
300A0609 U      -    Treatment Position Group UID
300A0611 Z      -    RT Accessory Holder Slot ID
300A0615 Z      -    RT Accessory Device Slot ID
300A0619 D      C    Radiation Dose Identification Label
300A0623 D      C    Radiation Dose In-Vivo Measurement Label
300A062A D      C    RT Tolerance Set Label
300A0650 U      -    Patient Setup UID
300A0676 X      C    Equipment Frame of Reference Description
300A067C D      C    Radiation Generation Mode Label
300A067D Z      C    Radiation Generation Mode Description
300C0113 X      C    Reason for Omission Description
300E0008 X/Z    -    Reviewer Name
30100006 U      -    Conceptual Volume UID
3010000B U      -    Referenced Conceptual Volume UID
3010000F Z      C    Conceptual Volume Combination Description
30100013 U      -    Constituent Conceptual Volume UID
30100015 U      -    Source Conceptual Volume UID
30100017 Z      C    Conceptual Volume Description
3010001B Z      -    Device Alternate Identifier
3010002D D      V    Device Label
30100031 U      -    Referenced Fiducials UID
30100033 D      C    User Content Label
30100034 D      C    User Content Long Label
30100035 D      C    Entity Label
30100036 X      C    Entity Name
30100037 X      C    Entity Description
30100038 D      C    Entity Long Label
3010003B U      -    RT Treatment Phase UID
30100043 Z      V    Manufacturer's Device Identifier
3010004C X/D    T    Intended Phase Start Date
3010004D X/D    T    Intended Phase End Date
30100054 D      C    RT Prescription Label
30100056 X/D    C    RT Treatment Approach Label
3010005A Z      C    RT Physician Intent Narrative
3010005C Z      C    Reason for Superseding
30100061 X      C    Prior Treatment Dose Description
3010006E U      -    Dosimetric Objective UID
3010006F U      -    Referenced Dosimetric Objective UID
30100077 D      C    Treatment Site
3010007A Z      C    Treatment Technique Notes
3010007B Z      C    Prescription Notes
3010007F Z      C    Fractionation Notes
30100081 Z      C    Prescription Notes Sequence
40000010 X      -    Arbitrary
40004000 X      -    Text Comments
40080042 X      -    Results ID Issuer
40080102 X      -    Interpretation Recorder
4008010A X      -    Interpretation Transcriber
4008010B X      C    Interpretation Text
4008010C X      -    Interpretation Author
40080111 X      -    Interpretation Approver Sequence
40080114 X      -    Physician Approving Interpretation
40080115 X      C    Interpretation Diagnosis Description
40080118 X      -    Results Distribution List Sequence
40080119 X      -    Distribution Name
4008011A X      -    Distribution Address
40080202 X      -    Interpretation ID Issuer
40080300 X      C    Impressions
40084000 X      C    Results Comments
50xxxxxx X      -    Curve Data
60xx3000 X      -    Overlay Data
60xx4000 X      -    Overlay Comments
FFFAFFFA X      -    Digital Signatures Sequence
FFFCFFFC X      -    Data Set Trailing Padding
"""


def _rows() -> list[Row]:
    rows = []
    for line in TABLE_E_1_1.strip().splitlines():
        tag, action, options, name = line.split(maxsplit=3)
        rows.append(Row(tag, action, "" if options == "-" else options, name))
    return rows


ROWS: list[Row] = _rows()
# Exact tags, and the few with "x" digits (curves, overlay data and comments) as masks.
BY_TAG: dict[int, Row] = {int(r.tag, 16): r for r in ROWS if "x" not in r.tag}
MASKED: list[tuple[int, int, Row]] = [
    (int(r.tag.replace("x", "0"), 16), int("".join("0" if c == "x" else "F" for c in r.tag), 16), r)
    for r in ROWS
    if "x" in r.tag
]


def row_for(tag: int) -> Row | None:
    row = BY_TAG.get(tag)
    if row is not None:
        return row
    for value, mask, masked in MASKED:
        # Repeating groups are the even groups 50xx/60xx only (odd groups are private).
        if tag & mask == value and (tag >> 16) % 2 == 0:
            return masked
    return None
