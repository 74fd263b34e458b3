"""The word lists of the lexicon sentiment scorer (English and Portuguese), written for sawubona.

Valences run from −3 (very negative) to +3 (very positive). Keys are lower case with the
accents removed (the scorer normalises texts the same way); multi-word phrases are first
joined into one token (``PHRASES``). Each block is ``word valence`` pairs, read once at
import.
"""

from __future__ import annotations


def _valences(text: str) -> dict[str, float]:
    parts = text.split()
    return {w: float(v) for w, v in zip(parts[::2], parts[1::2], strict=True)}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: English valences
EN_LEXICON: dict[str, float] = _valences(
    """
good 1.9  great 3.1  excellent 3.2  amazing 2.8  awesome 3.1  brilliant 2.8
fantastic 2.6  wonderful 2.7  perfect 2.7  superb 2.9  outstanding 3  lovely 2.8
love 3.2  loved 2.9  like 1  liked 1.8  happy 2.7  pleased 1.9  satisfied 1.8  glad 2
delighted 2.9  thanks 1.9  thank 1.5  grateful 2  helpful 1.9  friendly 2.2  kind 2
polite 1.8  quick 1.2  fast 1.3  prompt 1.3  easy 1.9  smooth 1.5  efficient 1.8
professional 1.5  recommend 1.8  recommended 1.7  best 3.2  nice 1.8  fine 0.8  ok 0.8
okay 0.9  sorted 1.2  resolved 1.5  fixed 1.2  solved 1.5  reliable 1.7  fair 1.1
quality 0.6  impressed 2.1  exceeded 2  superfast 2  abovebeyond 2.8  askformore 2.6
ontime 1.6  as_always 0  well 1.1  better 1.2  clean 1  fresh 1.2  tasty 2
delicious 2.8  cheerful 2.3  welcoming 2.1  patient 1.5  caring 2  understanding 1.4
eventually -0.6  average -0.4  mediocre -1.6  bad -2.5  poor -2.1  terrible -3.1
awful -3.1  horrible -3  worst -3.1  rude -2.7  slow -1.4  late -1.5  delay -1.4
delayed -1.6  delays -1.4  wait -0.6  waiting -0.8  waited -1  never -0.8  nobody -0.9
broken -2  damaged -2.1  wrong -2.1  missing -1.6  lost -1.6  disappointed -2.2
disappointing -2.2  disappointment -2.3  useless -2.6  unhelpful -2.1  angry -2.5
annoyed -2  annoying -2  frustrated -2.3  frustrating -2.3  unacceptable -2.9
ridiculous -2.3  problem -1.4  problems -1.4  issue -1  issues -1.1  complaint -1.5
complain -1.4  refund -0.6  cancelled -1.2  canceled -1.2  chase -1.3  chasing -1.5
again -0.3  still -0.3  ignored -2.2  expensive -1.4  overpriced -2  scam -3  fraud -3
cold -0.7  dirty -2.1  hate -2.9  hated -2.8  sorry -0.5  confusing -1.5  confused -1.3
difficult -1.5  hard -0.6  mess -2  messy -1.6  stale -1.7  ranout -1.9
wasteoftime -2.6  pillartopost -2.2  toolong -1.9  threetimes -1.2  keepsgoingup -1.6
notwhatiordered -2.2  calledmeback 1  nevercame -2  fewersteps -1  unfortunately -1.4
worse -2.1  fail -2.2  failed -2.2  failure -2.3
"""
)


#: Portuguese valences
PT_LEXICON: dict[str, float] = _valences(
    """
bom 1.9  boa 1.9  bons 1.9  boas 1.9  otimo 2.9  otima 2.9  otimos 2.9  otimas 2.9
excelente 3.2  excelentes 3.2  perfeito 2.8  perfeita 2.8  maravilhoso 2.9
maravilhosa 2.9  lindo 2.4  linda 2.4  lindos 2.4  adorei 3  amei 3.1  gostei 2.2
gostamos 2.2  recomendo 2.2  recomendamos 2.2  satisfeito 2  satisfeita 2  satisfeitos 2
satisfatorio 1.6  feliz 2.6  contente 2.2  rapido 1.6  rapida 1.6  rapidez 1.8  agil 1.6
eficiente 1.9  pontual 1.8  antes 0.9  adiantado 1.6  certinho 1.6  correto 1.2
correta 1.2  conforme 0.9  qualidade 0.8  bonito 1.9  bonita 1.9  confiavel 1.8
parabens 2.7  obrigado 1.7  obrigada 1.7  top 2.2  show 2  legal 1.5  beleza 1.4
tranquilo 1.2  super 1.4  melhor 2  incrivel 2.8  impecavel 2.8  cuidadoso 1.6  bem 1
aprovado 1.6  eficaz 1.6  facil 1.5  funciona 1.2  funcionando 1  semproblemas 1.6
dentrodoprazo 1.7  antesdoprazo 2  nadaadeclarar 0.5  ok 0.8  razoavel 0.2  regular -0.4
mediano -0.4  ruim -2.5  ruins -2.5  pessimo -3.1  pessima -3.1  horrivel -3
terrivel -3  decepcionado -2.3  decepcionada -2.3  decepcao -2.4  insatisfeito -2.2
insatisfeita -2.2  atraso -1.8  atrasado -1.8  atrasada -1.8  atrasou -1.8  demora -1.5
demorou -1.4  demorado -1.4  lento -1.4  lenta -1.4  defeito -2.2  defeituoso -2.3
quebrado -2.3  quebrada -2.3  danificado -2.2  danificada -2.2  errado -2.1  errada -2.1
faltando -1.8  faltou -1.7  falta -1.3  incompleto -1.8  problema -1.6  problemas -1.6
reclamacao -1.6  cancelar -1  cancelado -1.4  cancelei -1.3  devolver -1.3
devolucao -1.2  reembolso -0.8  estorno -1  enganado -2.6  enganosa -2.6  fraude -3
golpe -3  absurdo -2.5  lamentavel -2.6  vergonha -2.5  descaso -2.6  desrespeito -2.7
nunca -0.8  aguardando -1.3  esperando -1.1  ainda -0.4  pior -2.6  falso -2.4
falsificado -2.6  inferior -1.6  fragil -1.1  sujo -2  caro -1.2  mal -1.8  porem -0.5
infelizmente -1.6  naochegou -2.4  naorecebi -2.4  deixaadesejar -2  foradoprazo -1.9
naorecomendo -2.6  naoveio -2.2
"""
)


#: stop words that say which language a text is in (they carry no valence)
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        """
a about after all an and are as at be been but could for from had has have i in is it
just me my of on our really so that the there they this to very was we were what when
with would you your
"""
    ),
    "pt": _words(
        """
a as ate chegou com compra da das de do dos e ela ele entrega esta eu foi ja loja mais
mas me meu minha muito na nao nas no nos o os para pois por prazo produto que recebi sim
um uma veio
"""
    ),
}


#: words that turn the valence of the next three words (in the same clause)
NEGATORS: dict[str, frozenset[str]] = {
    "en": _words(
        """
hardly neither never no nobody none nor not nothing without
"""
    ),
    "pt": _words(
        """
jamais nada nao nem nenhum nenhuma nunca sem
"""
    ),
}


#: words that strengthen the next word
INTENSIFIERS: dict[str, frozenset[str]] = {
    "en": _words(
        """
absolutely extremely incredibly really so super totally very
"""
    ),
    "pt": _words(
        """
bastante bem demais extremamente muita muito super totalmente
"""
    ),
}


#: multi-word phrases → one token (applied after normalisation, before splitting)
PHRASES: dict[str, str] = {
    "above and beyond": "abovebeyond",
    "could not ask for more": "askformore",
    "waste of my time": "wasteoftime",
    "waste of time": "wasteoftime",
    "pillar to post": "pillartopost",
    "far too long": "toolong",
    "too long": "toolong",
    "three times": "threetimes",
    "ran out": "ranout",
    "run out": "ranout",
    "keeps going up": "keepsgoingup",
    "not what i ordered": "notwhatiordered",
    "never came": "nevercame",
    "fewer steps": "fewersteps",
    "on time": "ontime",
    "as always": "as_always",
    "sem problemas": "semproblemas",
    "sem problema": "semproblemas",
    "dentro do prazo": "dentrodoprazo",
    "antes do prazo": "antesdoprazo",
    "fora do prazo": "foradoprazo",
    "nao chegou": "naochegou",
    "nao recebi": "naorecebi",
    "nao veio": "naoveio",
    "nao recomendo": "naorecomendo",
    "deixa a desejar": "deixaadesejar",
    "deixou a desejar": "deixaadesejar",
    "nada a declarar": "nadaadeclarar",
}
